"""Class names of the sources that take them from the data (``nnunet``, ``per-class-files``,
``abdomenatlas``, ``totalsegmentator --classes all``): renames, and the classes they add.

A name is renamed first (``--rename OLD=NEW``, OLD in any case and spacing), then put in canonical
form: a universal class for its name or an alias ("kidney_left" is "left kidney"), an unsided name
of a universal pair ("kidney", split by side in world coordinates), or else a class the source adds,
with the parents given by ``--parent`` and the side given by ``--side`` or, by default, by the
word "right" or "left" in its name.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping

from dataset_conversion.source import Options
from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import canonical_name, normalise, side_of
from nnunet_clip.vocabulary import DEFAULT, ClassInfo


def renamed(name: str, options: Options, renames: Mapping[str, str] = {}) -> str:
    """The canonical class name of a source's ``name``, after the source's ``renames`` and ``--rename``."""
    key = normalise(name)
    return canonical_name({**{normalise(k): v for k, v in renames.items()}, **options.renames}.get(key, name))


def check_renames(names: Iterable[str], options: Options, where: Path) -> None:
    """Every ``--rename OLD`` names one of the source's classes."""
    known = {normalise(n) for n in names}
    unknown = [old for old in options.renames if old not in known]
    if unknown:
        raise InputError(f"--rename {unknown[0]}: no class of that name in {where}")


def added_classes(names: Iterable[str], options: Options,
                  parents: Mapping[str, tuple[str, ...]] = {}) -> dict[str, ClassInfo]:
    """The classes among canonical ``names`` outside the universal vocabulary (unsided names of its
    pairs aside), with parents (``--parent`` over ``parents``) and side (``--side`` over the name's)."""
    names = set(names)
    for option, given in (("--parent", options.parents), ("--side", options.sides)):
        unknown = [n for n in given if n not in names]
        if unknown:
            raise InputError(f"{option} {unknown[0]}: not a class of this source (its classes: {', '.join(sorted(names))})")
    unsided = DEFAULT.unsided()
    return {n: ClassInfo(tuple(options.parents.get(n, parents.get(n, ()))), options.sides.get(n, side_of(n)))
            for n in sorted(names) if n not in DEFAULT and n not in unsided}


def source_name(root: Path, options: Options) -> str:
    """The source's name in case ids: ``--source-name``, else INPUT_DIR's folder name without an nnU-Net
    ``DatasetXXX_`` prefix, in lower case, with any run of other characters than letters and digits as "-"."""
    name = options.source_name or re.sub(r"^dataset\d{3}_", "", root.resolve().name.lower())
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not cleaned:
        raise InputError(f"{root}: give the source a name with --source-name")
    return cleaned
