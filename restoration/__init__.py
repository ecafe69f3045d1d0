"""Spiking-neural-network image restoration toolkit.

    import restoration
    net = restoration.build_model("dehazesnn_s")
    restoration.list_models()
"""
__version__ = "0.1.0"

from . import models  # noqa: F401,E402  (light: model files load on first lookup)
from .registry import (DATASETS, MODELS, TASKS, Registry, build_model, build_task,  # noqa: F401
                       list_models, list_tasks)
from .pretrained import list_pretrained, load_pretrained, pretrained_info  # noqa: F401,E402
