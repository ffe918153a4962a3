"""What a source module provides: its cases found on disk, each read into image + ``LabelMap``.

``PairedSource`` is the table-driven source for downloads with one image file and one label-map
file per case; the other layouts (DICOM, PNG slices, one mask file per structure) subclass
``Source`` directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Mapping, Sequence

import SimpleITK as sitk

from dataset_conversion import discover, readers
from dataset_conversion.labels import LabelMap, expand, value_table
from nnunet_clip.errors import InputError
from nnunet_clip.vocabulary import ClassInfo


@dataclass(frozen=True)
class Options:
    """Source-specific choices of the ``convert`` command."""

    kits_aggregation: str = "majority"
    gibson: Path | None = None
    amos_meta: Path | None = None
    classes: str = "universal"
    """totalsegmentator: "universal" (the structures of the universal classes) or "all"."""
    renames: Mapping[str, str] = field(default_factory=dict)
    """nnunet, per-class-files: a source's class name (normalised) -> the name to use instead."""
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """A class the source adds (canonical name) -> the classes it lies inside."""
    sides: Mapping[str, str | None] = field(default_factory=dict)
    """A class the source adds -> its side, overriding the side word of its name (None: no side)."""
    image_name: str = "ct.nii.gz"
    """per-class-files: the file name of each case's image."""
    source_name: str | None = None
    """nnunet, per-class-files: the name of the source in case ids (default: from INPUT_DIR)."""


@dataclass(frozen=True)
class Case:
    """One labelled case found on disk, not read yet."""

    source_id: str
    files: tuple[Path, ...]
    annotated: tuple[str, ...]
    read: Callable[[], tuple[sitk.Image, LabelMap]] = field(compare=False)


@dataclass(frozen=True)
class Found:
    """A source's cases below INPUT_DIR, the images it skipped (no labels, not CT), the classes it
    adds to the universal ones, and, for a generic source, its name in case ids."""

    cases: list[Case]
    skipped: int = 0
    classes: Mapping[str, ClassInfo] = field(default_factory=dict)
    name: str | None = None


class Source:
    """A source dataset: its name, a one-line summary and the classes it annotates."""

    name: str
    summary: str
    annotated: tuple[str, ...]

    def find(self, root: Path, options: Options) -> Found:
        """The cases below ``root``; an ``InputError`` if there are none."""
        raise NotImplementedError

    def classes(self) -> tuple[str, ...]:
        """Every class a case of this source may annotate (what ``convert --list`` shows)."""
        return self.annotated


def read_pair(image_path: Path, label_path: Path, table: Mapping[int, tuple[str, ...]], source: str,
              origin_tolerant: bool = False) -> tuple[sitk.Image, LabelMap]:
    """An image file and its label-map file, checked to share one voxel grid."""
    image = readers.read_ct(image_path)
    label = readers.aligned(readers.read_image(label_path), image, label_path, image_path, origin_tolerant)
    codes = readers.label_codes(sitk.GetArrayViewFromImage(label), label_path, table, source)
    return image, LabelMap(codes, dict(table))


@dataclass
class PairedSource(Source):
    """Image file + label-map file per case, found by regular expressions on their paths.

    ``values`` maps the source's label values to classes (values mapped to ``()`` are known but
    outside the taxonomy, hence background); ``annotated`` may use unsided organ names.
    """

    name: str
    summary: str
    image: str
    label: str
    values: Mapping[int, Sequence[str]]
    annotated: tuple[str, ...]
    example: str
    max_depth: int = 6
    unlabelled_images: bool = False  # a test set without labels ships beside the training set

    def __post_init__(self):
        self.values = value_table(self.values)
        self.annotated = tuple(expand(self.annotated))

    def labels(self, root: Path, paths: list[str], options: Options) -> dict[str, Path]:
        """Case id -> label file."""
        return discover.match(root, paths, self.label)

    def labelling(self, source_id: str, label: Path, options: Options) -> tuple[Mapping, tuple[str, ...]]:
        """The value table and the annotated classes of one case."""
        return self.values, self.annotated

    def include(self, source_id: str, options: Options) -> bool:
        """Whether a case belongs to the conversion (AMOS: CT only)."""
        return True

    def find(self, root: Path, options: Options) -> Found:
        paths = discover.walk(root, self.max_depth)
        images = discover.match(root, paths, self.image)
        labels = self.labels(root, paths, options)
        for source_id, label in labels.items():
            if source_id not in images:
                raise InputError(f"{label}: missing the image of this label (expected like {self.example})")
        cases, skipped = [], 0
        for source_id in discover.sort_ids(images):
            if source_id not in labels or not self.include(source_id, options):
                if not self.unlabelled_images and self.include(source_id, options):
                    raise InputError(f"{images[source_id]}: missing the label file of this image")
                skipped += 1
                continue
            table, annotated = self.labelling(source_id, labels[source_id], options)
            cases.append(Case(source_id, (images[source_id], labels[source_id]), annotated,
                              partial(read_pair, images[source_id], labels[source_id], table, self.name)))
        if not cases:
            raise discover.nothing_found(root, self.name, self.example)
        return Found(cases, skipped)
