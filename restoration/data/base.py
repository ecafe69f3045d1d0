"""What the paired-image and stereo datasets share: a list of file pairs, validated up front.

A subclass finds its pairs (names and existence only, which is cheap) and hands them,
with any problems it found, to ``FilePairDataset._finish``. That raises one error listing
every problem, or with ``skip_bad=True`` drops the bad pairs and warns once with the list.
``verify`` opens every file once more (``'header'``: sizes only; ``True``/``'full'``: decode
every pixel, which also finds truncated files); it defaults to ``'full'`` when
``skip_bad=True`` so that a bad file is skipped before training rather than failing in a
DataLoader worker.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple, Union

from torch.utils.data import Dataset
from tqdm import tqdm

from .images import DataError, check_files, list_problems, warn_skipped

logger = logging.getLogger("restoration.data")

MODES = ("train", "valid", "test")


@dataclass(frozen=True)
class FilePair:
    """Two files that belong together (degraded + clean, or left + right) and the item name."""
    first: Path
    second: Path
    name: str


def check_choice(what: str, value, allowed: Sequence) -> None:
    if value not in allowed:
        raise DataError(f"unknown {what} {value!r}; expected one of {', '.join(map(repr, allowed))}")


class FilePairDataset(Dataset):
    """Base class: ``self.pairs`` (list of FilePair), validated and optionally verified."""

    #: what the two files of a pair are called in messages, e.g. ("input", "target")
    labels: Tuple[str, str] = ("first", "second")

    pairs: List[FilePair]
    skipped: List[str]
    layout: str
    description: str

    def _finish(self, pairs: List[FilePair], problems: List[str], where: str, layout: str,
                description: str, skip_bad: bool, verify: Union[bool, str, None]) -> None:
        self.layout, self.description = layout, description
        self.skipped = []
        if problems and not skip_bad:
            self._raise(problems, where, layout)
        if verify is None:
            verify = "full" if skip_bad else False
        check_choice("verify", verify, (False, True, "header", "full"))
        bad: List[str] = []
        if verify and pairs:
            good = []
            for p in tqdm(pairs, desc=f"checking {where}", leave=False, disable=len(pairs) < 500):
                found = check_files([p.first, p.second], self.labels, full=verify != "header")
                (bad.extend(found) if found else good.append(p))
            if bad and not skip_bad:
                self._raise(bad, where, layout)
            pairs = good
        if skip_bad and (problems or bad):
            self.skipped = problems + bad
            warn_skipped(f"{type(self).__name__}({where})", self.skipped)  # one warning, whole list
        if not pairs:
            raise DataError(f"no usable {self.labels[0]}/{self.labels[1]} pairs in {where} (layout "
                            f"{layout}); every pair was skipped as bad:\n{list_problems(self.skipped)}")
        self.pairs = pairs
        logger.info("%r", self)

    def check_headers(self, where: str = "") -> None:
        """Raise DataError listing every pair whose files are missing, unreadable or of
        different sizes, reading file headers only (fast; no pixels decoded)."""
        bad: List[str] = []
        for p in tqdm(self.pairs, desc=f"checking {where or 'pairs'}", leave=False, disable=len(self.pairs) < 500):
            bad.extend(check_files([p.first, p.second], self.labels, full=False))
        if bad:
            self._raise(bad, where or self.description, self.layout)

    def _raise(self, problems: List[str], where: str, layout: str) -> None:
        raise DataError(f"{len(problems)} problem(s) with {where} (layout {layout}):\n"
                        f"{list_problems(problems)}\nFix or remove these files, or skip them with "
                        f"--set data.args.skip_bad=true (skip_bad=True in Python; a warning lists what "
                        f"was skipped).")

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        extra = f", skipped {len(self.skipped)} bad" if getattr(self, "skipped", None) else ""
        return (f"{type(self).__name__}({self.description}; {len(self.pairs)} pairs, "
                f"mode={getattr(self, 'mode', '?')}{extra})")
