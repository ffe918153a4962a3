"""Finding a source's files below INPUT_DIR by the layout of the official download.

Layouts are regular expressions on paths relative to INPUT_DIR, searched (not anchored at the
start), so the download may sit in INPUT_DIR itself or a level or two below. Hidden files and
folders (macOS ``._*`` AppleDouble files among them) are never looked at.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from nnunet_clip.errors import InputError


def input_folder(path: Path) -> Path:
    """INPUT_DIR, checked to be a folder."""
    if not path.is_dir():
        raise InputError(f"{path}: no such folder")
    return path


def walk(root: Path, max_depth: int, folders: bool = False) -> list[str]:
    """Relative POSIX paths of the files (or folders) at most ``max_depth`` levels below ``root``."""
    found = []
    for current, dirs, files in os.walk(root):
        rel = Path(current).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        names = dirs if folders else sorted(f for f in files if not f.startswith("."))
        found.extend((rel / n).as_posix() for n in names)
        if len(rel.parts) + 1 >= max_depth:
            dirs[:] = []
    return found


def match(root: Path, paths: list[str], pattern: str) -> dict[str, Path]:
    """Case id (the pattern's first group) -> path, for the paths matching ``pattern`` at their end."""
    regex = re.compile(rf"(?:^|/){pattern}$")
    out: dict[str, Path] = {}
    for p in paths:
        m = regex.search(p)
        if m:
            if m.group(1) in out:
                raise InputError(f"{root / p}: a second file for case {m.group(1)} "
                                 f"(the first: {out[m.group(1)]})")
            out[m.group(1)] = root / p
    return out


def sort_ids(ids) -> list[str]:
    """Case ids in natural order (numbers numerically)."""
    return sorted(ids, key=lambda i: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", i)])


def nothing_found(root: Path, source: str, example: str) -> InputError:
    """The error for an INPUT_DIR without the source's layout."""
    return InputError(f"{root}: no {source} cases found (expected files like {example} "
                      f"in this folder or one level below)")
