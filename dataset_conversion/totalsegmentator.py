"""TotalSegmentator v1/v2 (Zenodo 6802614 / 10047292): ``sNNNN/ct.nii.gz`` and
``sNNNN/segmentations/<structure>.nii.gz``, one 0/1 file per structure.

Lung lobes are merged into the right and left lung; ``kidney_cyst_*`` (v2) count as kidney too.
Where two structures that cannot share a voxel overlap, the one later in ``STRUCTURES`` wins (as in
TotalSegmentator's own converter, last file wins). A class is annotated when all its files exist.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import SimpleITK as sitk

from dataset_conversion import discover, readers
from dataset_conversion.labels import LabelMap, value_table
from dataset_conversion.source import Case, Found, Options, Source
from nnunet_clip import taxonomy
from nnunet_clip.errors import InputError

STRUCTURES = value_table({
    "spleen": ("spleen",),
    "kidney_right": ("right kidney",),
    "kidney_left": ("left kidney",),
    "gallbladder": ("gall bladder",),
    "esophagus": ("esophagus",),
    "liver": ("liver",),
    "stomach": ("stomach",),
    "aorta": ("aorta",),
    "inferior_vena_cava": ("postcava",),
    "portal_vein_and_splenic_vein": ("portal vein and splenic vein",),
    "pancreas": ("pancreas",),
    "adrenal_gland_right": ("right adrenal gland",),
    "adrenal_gland_left": ("left adrenal gland",),
    "duodenum": ("duodenum",),
    "lung_upper_lobe_right": ("right lung",),
    "lung_middle_lobe_right": ("right lung",),
    "lung_lower_lobe_right": ("right lung",),
    "lung_upper_lobe_left": ("left lung",),
    "lung_lower_lobe_left": ("left lung",),
    "colon": ("colon",),
    "small_bowel": ("intestine",),
    "urinary_bladder": ("bladder",),
    "prostate": ("prostate",),
    "kidney_cyst_right": ("kidney cyst", "right kidney"),
    "kidney_cyst_left": ("kidney cyst", "left kidney"),
})
"""Mask file name (without .nii.gz) -> classes; a file's first class is the one it defines."""


def annotated_classes(present: set[str]) -> tuple[str, ...]:
    """The classes all of whose files are present."""
    defining: dict[str, list[str]] = {}
    for name, classes in STRUCTURES.items():
        defining.setdefault(classes[0], []).append(name)
    return tuple(taxonomy.sort_classes(c for c, names in defining.items() if set(names) <= present))


def read_case(ct: Path, files: tuple[str, ...]) -> tuple[sitk.Image, LabelMap]:
    """The subject's CT and its structure masks."""
    image = readers.read_ct(ct)
    masks = []
    for name in files:
        path = ct.parent / "segmentations" / f"{name}.nii.gz"
        mask = readers.aligned(readers.read_image(path), image, path, ct)
        masks.append((readers.binary_mask(mask, path, SOURCE.name), STRUCTURES[name]))
    return image, LabelMap.from_masks(masks)


class TotalSegmentator(Source):
    name = "totalsegmentator"
    summary = "TotalSegmentator v1/v2, 21 abdominal and chest structures (lobes merged)"
    annotated = annotated_classes(set(STRUCTURES))

    def find(self, root: Path, options: Options) -> Found:
        paths = discover.walk(root, 6)
        cts = discover.match(root, paths, r"(s\d{4})/ct\.nii\.gz")
        if not cts:
            raise discover.nothing_found(root, self.name, "Totalsegmentator_dataset/s0000/ct.nii.gz")
        masks = re.compile(r"((?:.*/)?s\d{4})/segmentations/([^/]+)\.nii\.gz")
        present: dict[Path, set[str]] = {}
        for m in filter(None, map(masks.fullmatch, paths)):
            present.setdefault(root / m.group(1), set()).add(m.group(2))
        cases = []
        for source_id in discover.sort_ids(cts):
            subject = cts[source_id].parent
            folder = subject / "segmentations"
            if subject not in present:
                raise InputError(f"{folder}: missing folder, or no mask file in it")
            files = tuple(name for name in STRUCTURES if name in present[subject])
            if not files:
                raise InputError(f"{folder}: no mask of a converted structure")
            cases.append(Case(source_id, (cts[source_id],), annotated_classes(present[subject]),
                              partial(read_case, cts[source_id], files)))
        return Found(cases)


SOURCE = TotalSegmentator()
