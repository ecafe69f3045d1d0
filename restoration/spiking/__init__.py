"""The shared spiking core: multi-step LIF/PLIF over SpikingJelly, the orthogonal LIF
(torch path, one-pass C++ kernels for the CPU, CuPy kernels for CUDA), the backend choice
(backend.py), the ANN-twin conversion and firing-rate monitoring."""
from .backend import cpp_available  # noqa: F401
from .convert import to_ann  # noqa: F401
from .monitor import FiringRateMonitor  # noqa: F401
from .neurons import (LIF, PLIF, cupy_available, is_spiking_neuron, reset_state,  # noqa: F401
                      resolve_backend, set_backend)
from .olif import OLIF, olif, olif_torch  # noqa: F401
