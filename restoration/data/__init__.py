"""Datasets, transforms and offline synthetic data generators."""
from .images import BadDataWarning, DataError, MissingDataError, load_image, save_png  # noqa: F401
from .paired import PairedImageDataset, detect_layout, resolve_pairs  # noqa: F401
from .stereo import StereoDataset, resolve_stereo  # noqa: F401
from .degradations import add_haze, add_rain, render_stereo  # noqa: F401
from .synthetic import BuiltinData, Option, ensure_builtin_data, make_dataset  # noqa: F401

__all__ = ["PairedImageDataset", "StereoDataset", "DataError", "MissingDataError", "BadDataWarning",
           "load_image", "save_png", "resolve_pairs", "resolve_stereo", "detect_layout",
           "make_dataset", "ensure_builtin_data", "BuiltinData", "Option", "add_haze", "add_rain", "render_stereo"]
