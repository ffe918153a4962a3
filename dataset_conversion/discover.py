"""Finding a source's files below INPUT_DIR by the layout of the official download, however it
was unpacked.

Layouts are regular expressions on paths relative to INPUT_DIR, searched (not anchored at the
start), so the download may sit in INPUT_DIR itself or a few levels below: the archive's top
folder kept or given as INPUT_DIR, an archive unzipped into a folder of its own name
(``RawData/RawData/...``), a download folder above it all. Zip archives are searched like
folders (``RawData.zip/RawData/Training/...``; ``readers`` reads their members), symbolic links to
folders are followed (each folder listed once, so a link loop ends), and hidden files and folders
(macOS ``._*`` AppleDouble files, ``__MACOSX``) are never looked at.
"""
from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

from nnunet_clip.errors import InputError

ARCHIVE_ENDINGS = (".zip", ".tar", ".tar.gz", ".tgz", ".7z", ".rar")


def input_folder(path: Path) -> Path:
    """INPUT_DIR, checked to be a folder."""
    if not path.is_dir():
        raise InputError(f"{path}: no such folder")
    return path


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _zip_files(archive: Path, prefix: str, levels: int) -> list[str]:
    """Relative paths (``prefix``/member) of the files of a zip archive, at most ``levels`` deep in it."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{archive}: cannot be read as a zip archive ({e})") from None
    files = (name.split("/") for name in names if not name.endswith("/"))
    return sorted(f"{prefix}/{'/'.join(parts)}" for parts in files
                  if len(parts) <= levels and not any(_hidden(p) for p in parts))


def walk(root: Path, max_depth: int, folders: bool = False) -> list[str]:
    """Relative POSIX paths of the files (or folders) at most ``max_depth`` levels below ``root``;
    the files inside zip archives among the files."""
    found, seen = [], set()
    for current, dirs, files in os.walk(root, followlinks=True):
        status = os.stat(current)
        if (status.st_dev, status.st_ino) in seen:  # a link back to a folder listed already
            dirs[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        rel = Path(current).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        files = sorted(f for f in files if not _hidden(f))
        found.extend((rel / n).as_posix() for n in (dirs if folders else files))
        for name in [] if folders else files:
            if name.lower().endswith(".zip") and len(rel.parts) + 1 < max_depth:
                found.extend(_zip_files(Path(current, name), (rel / name).as_posix(), max_depth - len(rel.parts) - 1))
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


def unwrapped(folder: Path) -> Path:
    """``folder``, or the folder of the same name that is all it holds, repeatedly: what unzipping
    ``X.zip`` (holding ``X/``) into a folder ``X`` makes of ``X``."""
    while True:
        entries = [p for p in folder.iterdir() if not _hidden(p.name)] if folder.is_dir() else []
        if len(entries) != 1 or entries[0].name != folder.name or not entries[0].is_dir():
            return folder
        folder = entries[0]


def sort_ids(ids) -> list[str]:
    """Case ids in natural order (numbers numerically)."""
    return sorted(ids, key=lambda i: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", i)])


def layouts(root: Path, cases: Iterable[Sequence[Path]]) -> list[str]:
    """The layouts the cases' files were found in: one example case per way of laying them out (the
    paths relative to ``root`` with their numbers taken as placeholders), and how many cases have it."""
    examples: dict[str, tuple[str, int]] = {}
    for files in cases:
        rel = [f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f) for f in files]
        key = re.sub(r"\d+", "#", " ".join(rel))
        example, count = examples.get(key, (" + ".join(rel), 0))
        examples[key] = example, count + 1
    return [f"{example} ({count} case{'s' if count > 1 else ''})" for example, count in examples.values()]


def nothing_found(root: Path, source: str, example: str) -> InputError:
    """The error for an INPUT_DIR without the source's layout; it names archives left packed there."""
    archives = sorted(p.name for p in root.iterdir() if p.name.lower().endswith(ARCHIVE_ENDINGS)
                      and not _hidden(p.name)) if root.is_dir() else []
    packed = f"; unpack {', '.join(archives[:3])}{' ...' if len(archives) > 3 else ''} first" if archives else ""
    return InputError(f"{root}: no {source} cases found (expected files like {example} "
                      f"in this folder or a few levels below{packed})")
