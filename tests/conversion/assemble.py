"""Converting fixtures: write cases in a source's official layout, run ``convert`` on them."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from dataset_conversion.convert import convert
from dataset_conversion.source import Options
from nnunet_clip.synthetic.layouts import SourceCase, write_source


def write_and_convert(tmp: Path, source: str, cases: Sequence[SourceCase], dataset_id: int = 1,
                      options: Options = Options(), input_name: str | None = None) -> Path:
    """Write ``cases`` below ``tmp/<input_name or source>`` and convert them into ``dataset_id``
    of ``$nnUNet_raw``; returns the dataset folder."""
    root = write_source(source, tmp / (input_name or source), cases)
    return convert(source, root, dataset_id, options=options)


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file below ``folder``: relative path -> (mtime_ns, sha1 of its bytes)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}
