"""Writing files so that no reader ever sees half of one.

Every file the toolkit writes (checkpoints, images, results, configs) goes to
:func:`temp_path` first and is renamed into place. The temporary name carries the
writer's process id, so that a later run can tell a leftover of a killed process
(:func:`remove_stale_temporaries`) from a file another live process is writing.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List

_TEMP = re.compile(r"^\..+\.tmp(\d+)$")


def temp_path(path: os.PathLike) -> Path:
    """``dir/.name.tmp<pid>`` beside ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: os.PathLike) -> List[Path]:
    """Delete the ``.*.tmp<pid>`` files in ``folder`` whose writer is no longer running."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _TEMP.match(p.name)
        if m and p.is_file() and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def write_text(path: os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (temporary name, then rename); makes the
    folder. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
