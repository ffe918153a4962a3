"""What ``nnunet-clip predict`` writes, each file under a temporary name first, then renamed.

OUT/<case>/<class>.nii.gz   binary mask per class (uint8 0/1; overlaps kept)
OUT/<case>.nii.gz           label map: one value per voxel, named in OUT/labels.json (nnU-Net regions)
OUT/<case>.dcm              (--output-type dicom-seg) DICOM SEG, one segment per class (dicom_seg.py)
OUT/<case>/probabilities/<class>.nii.gz   (--probabilities) uint8, probability × 255, rounded
OUT/<case>/statistics.json  (--statistics)
OUT/<case>/preview.png      (--preview)

Every image has the input's exact geometry: the array is written with the input's origin, spacing
and direction copied over. The case's map (or, without NIfTI output, its SEG) is written last,
so its presence marks a complete case.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet_clip import atomic
from nnunet_clip.atomic import atomic_path
from nnunet_clip.taxonomy import PARENTS, atom_table, is_known, is_lesion
from nnunet_clip.vocabulary import DEFAULT, Vocabulary

MAP_ENDING = ".nii.gz"
SEG_ENDING = ".dcm"


def write_image(array: np.ndarray, reference: sitk.Image, path: Path) -> None:
    """``array`` (z, y, x) with the geometry of ``reference``, compressed."""
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    atomic.write_image(image, path)


def write_json(data: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def file_name(class_name: str) -> str:
    """File name of a class's mask: spaces become underscores ("liver tumor" -> liver_tumor.nii.gz)."""
    return "_".join(class_name.split()) + MAP_ENDING


def map_labels(classes: list[str], vocabulary: Vocabulary = DEFAULT) -> dict:
    """dataset.json-style ``labels`` of the map: class -> its values (a region), as ``Vocabulary.labels``.

    A value is an atom: one class, or a structure together with its host organ (liver + liver
    tumour), so those overlaps survive in the map. New (zero-shot) names get one value each.
    """
    return vocabulary.labels(classes)[0]


def _paint_key(classes: frozenset[str]) -> tuple:
    """Atoms of two classes after single classes; tumours and structures inside organs after organs."""
    return len(classes), max((is_lesion(c), c in PARENTS or not is_known(c)) for c in classes)


def paint_order(classes: list[str]) -> list[str]:
    """Classes in the order the map (and a preview) paints them: organs first, tumours last."""
    return sorted(classes, key=lambda c: _paint_key(frozenset([c])))


def label_map(masks: dict[str, np.ndarray], labels: dict) -> np.ndarray:
    """One value per voxel: the atom of the classes there; other overlaps go to the atom painted last."""
    table = atom_table(labels)
    out = np.zeros(next(iter(masks.values())).shape, dtype=np.uint8 if max(table) < 256 else np.uint16)
    for value, classes in sorted(table.items(), key=lambda item: _paint_key(item[1])):
        out[np.logical_and.reduce([masks[c] for c in classes])] = value
    return out


def labels_json(classes: list[str], vocabulary: Vocabulary = DEFAULT) -> dict:
    """The contents of OUT/labels.json: each class's values in the map, each value's classes, mask files."""
    labels = map_labels(classes, vocabulary)
    return {"labels": labels,
            "values": {str(v): sorted(atom, key=classes.index) for v, atom in atom_table(labels).items()},
            "files": {c: file_name(c) for c in classes}}
