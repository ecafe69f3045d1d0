"""Task-agnostic training and evaluation engine.

* :mod:`.task`: the task plugin interface (:class:`Task`, :class:`PairedImageTask`);
* :mod:`.trainer`: :class:`Trainer` (loop, validation, checkpoints, DDP);
* :mod:`.evaluator`: padded / tiled inference, metrics over a data set, results files;
* :mod:`.checkpoint`, :mod:`.optim`, :mod:`.distributed`, :mod:`.log`: the parts;
* :mod:`.runner`: the command lines behind tools/train.py, test.py, infer.py.

The engine knows nothing task-specific; see docs/ENGINE.md.
"""
from .evaluator import Evaluator, format_table, padded_forward, tiled_forward  # noqa: F401
from .task import PairedImageTask, Task  # noqa: F401
from .trainer import NonFiniteLossError, Trainer  # noqa: F401
