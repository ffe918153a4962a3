"""Files written so that no reader ever sees half of one: under a temporary name beside the
target, renamed into place when complete.

A process killed while writing leaves only temporary files (``.tmp-<random>-<name>``, hidden);
``remove_leftovers`` deletes them when the command runs again.
"""
from __future__ import annotations

import errno
import glob
import os
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nnunet_clip import nifti

TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path with the same ending beside ``path``, renamed to ``path`` if the block succeeds.
    An OSError writing the temporary file (a full disk) names ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.filename not in (None, str(tmp), tmp):
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """What C libraries write to file descriptor 2 inside the block, held back: the list yielded
    holds it after the block."""
    held: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as f:
            os.dup2(f.fileno(), 2)
            try:
                yield held
            finally:
                os.dup2(saved, 2)
                f.seek(0)
                held.append(f.read().decode(errors="replace"))
    finally:
        os.close(saved)


def write_image(image, path: Path) -> None:
    """A SimpleITK image written compressed to ``path``, atomically and checked (``write_checked``)."""
    with atomic_path(path) as tmp:
        write_checked(image, tmp, path)


def write_checked(image, path: Path, named: Path | None = None) -> None:
    """A SimpleITK image written compressed to ``path``; an OSError naming ``named`` (default ``path``)
    if it cannot be. SimpleITK's NIfTI writer reports a short write (a full disk, a file size limit)
    on stderr only and returns, so the file is read back (``nifti.problem``) and that message goes
    into the error."""
    import SimpleITK as sitk

    named = path if named is None else named
    with _native_stderr() as native:
        try:
            sitk.WriteImage(image, str(path), True)
        except RuntimeError as e:
            message = next((line.strip() for line in reversed(str(e).splitlines()) if line.strip()), "")
            raise OSError(errno.EIO, f"cannot be written ({message[:200]})", str(named)) from None
    problem = nifti.problem(path)
    if problem:
        said = " ".join(line.strip("* ") for line in native[0].splitlines() if line.strip())
        raise OSError(errno.EIO, f"written incompletely ({said or problem})", str(named))
    sys.stderr.write(native[0])


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
