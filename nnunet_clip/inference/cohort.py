"""Sharing a cohort between processes (``--num-parts/--part-id``) and resuming it (``--continue``).

A part is every ``num_parts``-th case of the input's case list from ``part_id`` on, as nnU-Net's
``-num_parts/-part_id`` takes ``cases[part_id::num_parts]`` of its sorted list: the list is the
same in every process, so the parts are disjoint and together hold every case.

A case is complete when every file this run would write for it exists. Files are renamed into
place only when written in full (``outputs.atomic_path``), so an existing file is a finished
one; a run killed in the middle of a case leaves some of its files and, from the file it was
writing, a ``.tmp-`` file, which ``--continue`` removes before predicting the case again.
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path
from typing import Sequence

from nnunet_clip.errors import InputError
from nnunet_clip.atomic import TMP_PREFIX
from nnunet_clip.inference.outputs import MAP_ENDING, SEG_ENDING, file_name


def select_part(cases: Sequence, num_parts: int, part_id: int) -> list:
    """Part ``part_id`` (0 to ``num_parts`` - 1) of ``cases``: every ``num_parts``-th from ``part_id`` on."""
    if num_parts < 1:
        raise InputError(f"--num-parts {num_parts}: must be 1 or more")
    if not 0 <= part_id < num_parts:
        raise InputError(f"--part-id {part_id}: must be 0 to {num_parts - 1} for --num-parts {num_parts} "
                         f"(counted from 0, as nnU-Net's -part_id)")
    return list(cases[part_id::num_parts])


def case_outputs(out: Path, case: str, classes: Sequence[str], args: argparse.Namespace) -> list[Path]:
    """Every file ``nnunet-clip predict`` with options ``args`` writes for a case (docs/prediction.md)."""
    folder = out / case
    files = [folder / "probabilities" / file_name(c) for c in classes] if args.probabilities else []
    if "nifti" in args.output_type:
        files += [folder / file_name(c) for c in classes] + [out / f"{case}{MAP_ENDING}"]
    if "dicom-seg" in args.output_type:
        files.append(out / f"{case}{SEG_ENDING}")
    if args.statistics:
        files.append(folder / "statistics.json")
    if args.preview:
        files.append(folder / "preview.png")
    return files


def remove_temporaries(out: Path, case: str) -> None:
    """The ``.tmp-`` files a killed run left of a case: in its folder, and its map's or SEG's beside it."""
    beside = [f"{TMP_PREFIX}{'[0-9a-f]' * 8}-{glob.escape(case)}{ending}"
              for ending in (MAP_ENDING, SEG_ENDING)]
    for tmp in [*(out / case).rglob(f"{TMP_PREFIX}*"), *(p for b in beside for p in out.glob(b))]:
        tmp.unlink(missing_ok=True)


def check_same_classes(out: Path, labels: dict) -> None:
    """InputError if ``out`` holds the labels.json of another class selection than ``labels``."""
    path = out / "labels.json"
    if path.is_file() and json.loads(path.read_text()) != labels:
        raise InputError(f"{path}: written for other classes than this run's; --continue needs the same "
                         "--classes (and model) as the run it continues")


def unfinished_cases(cases: Sequence, out: Path, classes: Sequence[str], args: argparse.Namespace) -> list:
    """The cases of which some output is missing, each cleared of the temporary files of a killed run."""
    unfinished = []
    for case in cases:
        outputs = case_outputs(out, case.name, classes, args)
        if not all(path.is_file() for path in outputs):
            remove_temporaries(out, case.name)
            unfinished.append(case)
    return unfinished
