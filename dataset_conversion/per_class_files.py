"""One folder per case holding its image (``ct.nii.gz``, ``--image NAME``) and
``segmentations/<class>.nii.gz``, one 0/1 (or 0/255) mask file per class: the layout of AbdomenAtlas
and of the TotalSegmentator dataset.

Class names come from the mask file names (``dataset_conversion.class_names``: renames, aliases,
added classes), and each case annotates exactly the classes it has files for; a class that several
files make up after renaming, when it has all of them. Where the masks of two classes that cannot
share a voxel overlap, the later file wins: classes inside others after their hosts, otherwise in
file-name order.

``abdomenatlas`` is this layout with AbdomenAtlas's quirks (docs/datasets.md): its ``femur_left``
and ``femur_right`` are the heads of the femurs, and cases whose image is missing (the 1.1 Mini
release ships segmentations without images for part of its cases) are skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Mapping, Sequence

import SimpleITK as sitk

from dataset_conversion import discover, readers
from dataset_conversion.class_names import added_classes, check_renames, renamed, source_name
from dataset_conversion.labels import AtomTable, LabelMap
from dataset_conversion.source import Case, Found, Options, Source
from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import canonical_name
from nnunet_clip.vocabulary import DEFAULT

MASK = r"([^/]+)/segmentations/([^/]+)\.nii(?:\.gz)?"


def read_case(image_path: Path, masks: Sequence[tuple[Path, str]], source: str) -> tuple[sitk.Image, LabelMap]:
    """The image and its mask files (in priority order, each with its class)."""
    image = readers.read_ct(image_path)
    arrays = []
    for path, name in masks:
        mask = readers.aligned(readers.read_image(path), image, path, image_path)
        arrays.append((readers.binary_mask(mask, path, source), (name,)))
    return image, LabelMap.from_masks(arrays)


def _depth(name: str, parents: Mapping[str, Sequence[str]]) -> int:
    return 1 + max((_depth(p, parents) for p in parents.get(name, ())), default=-1)


@dataclass
class PerClassFiles(Source):
    """Case folders with an image and one mask file per class."""

    name: str = "per-class-files"
    summary: str = ("one folder per case: the image (--image, default ct.nii.gz) and segmentations/<class>.nii.gz; "
                    "classes from the file names")
    renames: Mapping[str, str] = field(default_factory=dict)
    """Mask file name (without its ending) -> class name, before ``--rename``."""
    skip_missing_images: bool = False
    annotated: tuple[str, ...] = ()
    prefix: str | None = None
    """The source's name in case ids (default: ``class_names.source_name``)."""

    def classes(self) -> tuple[str, ...]:
        return self.annotated or ("the classes named by its mask files",)

    def find(self, root: Path, options: Options) -> Found:
        paths = discover.walk(root, 6)
        files: dict[str, dict[str, Path]] = {}
        for p in paths:
            m = re.search(rf"(?:^|/){MASK}$", p)
            if m:
                files.setdefault(m.group(1), {})[m.group(2)] = root / p
        images = discover.match(root, paths, rf"([^/]+)/{re.escape(options.image_name)}")
        example = f"BDMAP_00000001/{options.image_name}, BDMAP_00000001/segmentations/liver.nii.gz"
        if not files:
            raise discover.nothing_found(root, self.name, example)
        check_renames({stem for stems in files.values() for stem in stems}, options, root)
        class_of = {stem: renamed(stem, options, self.renames) for stems in files.values() for stem in stems}
        classes = added_classes(set(class_of.values()), options)
        try:
            vocabulary = DEFAULT.with_classes(classes)
        except ValueError as e:
            raise InputError(f"{root}: {e}") from None
        table = AtomTable.of(vocabulary)
        order = sorted(class_of, key=lambda stem: (_depth(class_of[stem], vocabulary.parents), stem))
        made_of = {c: {s for s, n in class_of.items() if n == c} for c in class_of.values()}
        cases, skipped = [], 0
        name = source_name(root, options) if options.source_name or not self.prefix else self.prefix
        for case in discover.sort_ids(files):
            if case not in images:
                if self.skip_missing_images:
                    skipped += 1
                    continue
                raise InputError(f"{files[case][next(iter(files[case]))].parent.parent}: missing the image "
                                 f"{options.image_name} of this case (--image names another)")
            present = files[case]
            annotated = table.expand(c for c, stems in made_of.items() if stems <= set(present))
            masks = tuple((present[stem], class_of[stem]) for stem in order if stem in present)
            cases.append(Case(case, (images[case],), tuple(annotated), partial(read_case, images[case], masks, name)))
        skipped += len(set(images) - set(files))
        return Found(cases, skipped, classes, name)


ABDOMENATLAS_FILES = (
    "aorta", "gall_bladder", "kidney_left", "kidney_right", "liver", "pancreas", "postcava", "spleen", "stomach",
    "adrenal_gland_left", "adrenal_gland_right", "bladder", "celiac_trunk", "colon", "duodenum", "esophagus",
    "femur_left", "femur_right", "hepatic_vessel", "intestine", "lung_left", "lung_right",
    "portal_vein_and_splenic_vein", "prostate", "rectum")
"""The mask files of AbdomenAtlas 1.1's 25 classes."""
ABDOMENATLAS_RENAMES = {"femur_left": "left head of femur", "femur_right": "right head of femur"}
ABDOMENATLAS = PerClassFiles(
    name="abdomenatlas",
    summary="AbdomenAtlas 1.0/1.1 (BDMAP_xxxxxxxx/ct.nii.gz, segmentations/<organ>.nii.gz); cases without image skipped",
    renames=ABDOMENATLAS_RENAMES,
    skip_missing_images=True,
    prefix="abdomenatlas",
    annotated=tuple(DEFAULT.sort(canonical_name(ABDOMENATLAS_RENAMES.get(f, f)) for f in ABDOMENATLAS_FILES)),
)
PER_CLASS_FILES = PerClassFiles()
