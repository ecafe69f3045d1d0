"""Model zoo: one file per architecture, each registering its names in
``restoration.registry.MODELS`` when imported (the registry imports them lazily).

``load_official(name, path)`` builds a registered model and loads a checkpoint saved
in its authors' format (bare or wrapped state dict, ``module.`` prefixes)."""
from ._official import load_official  # noqa: F401
