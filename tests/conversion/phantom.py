"""Tiny synthetic CT cases for the converter tests, and reading back what ``convert`` wrote.

A case is built in LPS with the identity direction (array index x grows toward the patient's
LEFT), one 2x2x2 block per class at a fixed place (``BLOCKS``); a hosted structure is one voxel of
its host's block. ``oriented`` re-stores a case in another axis layout (RAS, slice-first I-P-L);
checks then go through world coordinates (``world``, ``classes_at``), never array indices.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet_clip.synthetic.layouts import SourceCase
from nnunet_clip.taxonomy import CLASS_NAMES, atom_table

SHAPE = (12, 12, 16)  # z, y, x
SPACING = (2.0, 1.5, 3.0)  # x, y, z
ORIGIN = (-16.0, -9.0, 100.0)

BLOCKS: dict[str, tuple[int, int, int]] = {  # first voxel (z, y, x) of a 2x2x2 block
    "right kidney": (4, 4, 1), "left kidney": (4, 4, 10),
    "right lung": (10, 4, 1), "left lung": (10, 4, 13),
    "right adrenal gland": (7, 4, 1), "left adrenal gland": (7, 4, 13),
    "right head of femur": (1, 4, 1), "left head of femur": (1, 4, 13),
    "liver": (7, 7, 1), "spleen": (7, 7, 13), "gall bladder": (4, 7, 4), "esophagus": (10, 1, 7),
    "stomach": (7, 1, 10), "aorta": (4, 1, 7), "postcava": (4, 1, 4),
    "portal vein and splenic vein": (7, 1, 4), "pancreas": (4, 7, 10), "duodenum": (4, 10, 7),
    "colon": (1, 7, 7), "intestine": (1, 10, 10), "rectum": (1, 1, 7), "bladder": (1, 1, 4),
    "prostate": (1, 1, 10), "celiac trunk": (7, 4, 7),
}
HOSTED: dict[str, tuple[int, int, int]] = {  # one voxel inside the host's block
    "kidney tumor": (4, 4, 1), "kidney cyst": (5, 5, 2), "liver tumor": (7, 7, 1),
    "hepatic vessel": (8, 8, 2), "hepatic vessel tumor": (7, 8, 2), "lung tumor": (10, 4, 1),
    "colon tumor": (1, 7, 7), "pancreas tumor": (4, 7, 10),
}
assert set(BLOCKS) | set(HOSTED) == set(CLASS_NAMES)


def voxel(name: str) -> tuple[int, int, int]:
    """A voxel (z, y, x of the LPS phantom) that belongs to ``name``; for an organ, one of its
    block's voxels that holds no hosted structure."""
    if name in HOSTED:
        return HOSTED[name]
    z, y, x = BLOCKS[name]
    return (z + 1, y, x + 1)


def hu_offset(name: str) -> int:
    """What an organ's block adds to the soft-tissue HU (20-60): disjoint ranges per organ."""
    return 100 + 40 * CLASS_NAMES.index(name)


def world(index_zyx: tuple[int, int, int]) -> tuple[float, float, float]:
    """World (LPS, mm) point of a phantom voxel."""
    z, y, x = index_zyx
    return tuple(o + s * i for o, s, i in zip(ORIGIN, SPACING, (x, y, z)))


def case(case_id, seed: int, classes=CLASS_NAMES, body_x: tuple[int, int] | None = None,
         **meta) -> SourceCase:
    """A phantom with blocks for ``classes`` (their hosts too) and a noisy soft-tissue body above a
    slice of air; outside ``body_x`` (x index range, end excluded) the phantom is air too."""
    rng = np.random.default_rng(seed)
    array = rng.integers(20, 60, SHAPE).astype(np.int16)
    array[0] = -1000  # a slice of air below the body (no structure there): a CT, not an MR image
    if body_x is not None:
        array[:, :, :body_x[0]] = -1000
        array[:, :, body_x[1]:] = -1000
    masks = {}
    for name in classes:
        mask = np.zeros(SHAPE, bool)
        if name in BLOCKS:
            z, y, x = BLOCKS[name]
            mask[z:z + 2, y:y + 2, x:x + 2] = True
            array[mask] += hu_offset(name)
        else:
            mask[HOSTED[name]] = True
        masks[name] = mask
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    return SourceCase(case_id, image, masks, dict(meta))


def oriented(source_case: SourceCase, orientation: str) -> SourceCase:
    """The same case stored with another axis layout (e.g. "RAS", "IPL")."""
    image = sitk.DICOMOrient(source_case.image, orientation)

    def reorient(mask):
        m = sitk.GetImageFromArray(mask.astype(np.uint8))
        m.CopyInformation(source_case.image)
        return sitk.GetArrayFromImage(sitk.DICOMOrient(m, orientation)).astype(bool)

    return SourceCase(source_case.case_id, image, {k: reorient(v) for k, v in source_case.masks.items()},
                      dict(source_case.meta))


def dataset_json(folder: Path) -> dict:
    return json.loads((folder / "dataset.json").read_text())


def classes_at(folder: Path, case_id: str, index_zyx: tuple[int, int, int]) -> frozenset[str]:
    """The classes of the written label of ``case_id`` at the world point of a phantom voxel."""
    label = sitk.ReadImage(str(folder / "labelsTr" / f"{case_id}.nii.gz"))
    value = label[label.TransformPhysicalPointToIndex(world(index_zyx))]
    return atom_table(dataset_json(folder)["labels"]).get(int(value), frozenset())
