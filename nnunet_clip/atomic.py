"""Files written so that no reader ever sees half of one: under a temporary name beside the
target, renamed into place when complete.

A process killed while writing leaves only temporary files (``.tmp-<random>-<name>``, hidden);
``remove_leftovers`` deletes them when the command runs again.
"""
from __future__ import annotations

import glob
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path with the same ending beside ``path``, renamed to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_leftovers(*paths: Path) -> None:
    """Delete the temporary files that killed writers of ``paths`` left: for a file, those beside it
    named after it; for a folder, every temporary file below it."""
    for path in map(Path, paths):
        if path.is_dir():
            found = path.rglob(f"{TMP_PREFIX}*")
        else:
            found = path.parent.glob(f"{TMP_PREFIX}{'[0-9a-f]' * 8}-{glob.escape(path.name)}")
        for leftover in found:
            if leftover.is_file():
                leftover.unlink()
