"""Model zoo: one file per architecture, each registering its names in
``restoration.registry.MODELS`` when imported (the registry imports them lazily)."""
