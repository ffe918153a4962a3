"""TotalSegmentator v1/v2 (Zenodo 6802614 / 10047292): ``sNNNN/ct.nii.gz`` and
``sNNNN/segmentations/<structure>.nii.gz``, one 0/1 file per structure.

Lung lobes are merged into the right and left lung; ``kidney_cyst_*`` (v2) count as kidney too.
Where two structures that cannot share a voxel overlap, the one later in ``STRUCTURES`` wins (as in
TotalSegmentator's own converter, last file wins). A class is annotated when all its files exist.

With ``--classes all`` every other mask file becomes a class of its own name (``vertebrae_L1`` is
"vertebrae l1", ``rib_left_1`` "rib left 1" on the left), after the universal ones in file-name
order, and each lung lobe is a class inside its lung as well.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import SimpleITK as sitk

from dataset_conversion import discover, readers
from dataset_conversion.class_names import added_classes
from dataset_conversion.labels import LabelMap, value_table
from dataset_conversion.source import Case, Found, Options, Source
from nnunet_clip import taxonomy
from nnunet_clip.taxonomy import canonical_name
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


LOBES = tuple(name for name in STRUCTURES if name.startswith("lung_"))


def file_classes(present: set[str], classes: str) -> dict[str, tuple[str, ...]]:
    """Mask file -> its classes, for the files of ``present`` that are converted with ``--classes``
    ("universal" or "all"), in the order in which a later file wins."""
    files = {name: STRUCTURES[name] for name in STRUCTURES if name in present}
    if classes == "all":
        files.update({name: (canonical_name(name), *STRUCTURES[name]) for name in LOBES if name in present})
        files.update({name: (canonical_name(name),) for name in sorted(present - set(STRUCTURES))})
    return files


def read_case(ct: Path, files: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[sitk.Image, LabelMap]:
    """The subject's CT and its structure masks (file name and classes of each)."""
    image = readers.read_ct(ct)
    masks = []
    for name, classes in files:
        path = ct.parent / "segmentations" / f"{name}.nii.gz"
        mask = readers.aligned(readers.read_image(path), image, path, ct)
        masks.append((readers.binary_mask(mask, path, SOURCE.name), classes))
    return image, LabelMap.from_masks(masks)


class TotalSegmentator(Source):
    name = "totalsegmentator"
    summary = "TotalSegmentator v1/v2, 21 abdominal and chest structures (lobes merged); --classes all: every structure"
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
        cases, added = [], set()
        for source_id in discover.sort_ids(cts):
            subject = cts[source_id].parent
            folder = subject / "segmentations"
            if subject not in present:
                raise InputError(f"{folder}: missing folder, or no mask file in it")
            files = file_classes(present[subject], options.classes)
            if not files:
                raise InputError(f"{folder}: no mask of a converted structure")
            own = [classes[0] for classes in files.values() if classes[0] not in taxonomy.CLASS_INDEX]
            added.update(own)
            cases.append(Case(source_id, (cts[source_id],), (*annotated_classes(present[subject]), *own),
                              partial(read_case, cts[source_id], tuple(files.items()))))
        parents = {canonical_name(lobe): STRUCTURES[lobe] for lobe in LOBES}
        return Found(cases, classes=added_classes(added, options, parents) if added else {})


SOURCE = TotalSegmentator()
