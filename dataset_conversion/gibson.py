"""Gibson et al.'s multi-organ relabelling of BTCV and TCIA Pancreas-CT (Zenodo 1169361).

A separate download of label files only: ``label_btcv_multiorgan/labelNNNN.nii.gz`` and
``label_tcia_multiorgan/labelNNNN.nii.gz``. They use BTCV's numbering; TCIA cases and BTCV test
cases (0061-0080) carry 8 organs only (CLIP's templates ``02`` and ``01_2``).
"""
from __future__ import annotations

from pathlib import Path

from dataset_conversion import discover
from dataset_conversion.source import Options
from nnunet_clip import taxonomy
from nnunet_clip.errors import InputError

ORGANS = (1, 3, 4, 5, 6, 7, 11, 14)
"""BTCV values of the 8 organs Gibson annotated in every volume."""

ALL_VALUES = {v: (taxonomy.CLASS_NAMES[v - 1],) for v in range(1, 15)}
"""BTCV numbering 1-14 (13 BTCV organs + duodenum); identical to the universal classes 1-14."""

EIGHT_ORGANS = {v: names if v in ORGANS else () for v, names in ALL_VALUES.items()}
"""The same numbering where only the 8 Gibson organs count; other values become background."""


def find_labels(root: Path, options: Options, folder: str) -> dict[str, Path]:
    """Case id (4 digits) -> Gibson label file in ``folder``, below INPUT_DIR or ``--gibson``; the
    ``--gibson`` folder may also hold the label files themselves, whatever its name."""
    found = discover.match(root, discover.walk(root, 5), rf"{folder}/label(\d{{4}})\.nii\.gz")
    if options.gibson is not None:
        if not options.gibson.is_dir():
            raise InputError(f"{options.gibson}: no such folder (--gibson)")
        paths = discover.walk(options.gibson, 5)
        given = discover.match(options.gibson, paths, rf"{folder}/label(\d{{4}})\.nii\.gz")
        found.update(given or discover.match(options.gibson, [p for p in paths if "/" not in p],
                                             r"label(\d{4})\.nii\.gz"))
    return found
