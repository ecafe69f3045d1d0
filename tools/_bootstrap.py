"""Make the repository root importable when a tool runs as ``python tools/<tool>.py``
from a clone (no ``pip install`` needed). Imported first by every tool."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
