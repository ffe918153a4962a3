"""Per-voxel class sets: from a source's label values or mask files to the dataset's label atoms.

A source case is read into a ``LabelMap``: an integer array of *codes* (a source's own label
values, or combinations of mask files) plus the classes each code stands for. Class names are
canonical class names (``nnunet_clip.vocabulary``) or an unsided name (``"kidney"``, ``"lung"``,
``"adrenal gland"``, ``"head of femur"``, or that of a sided pair a dataset adds) that
``AtomTable.to_atoms`` splits into the patient's right and left in world coordinates
(``nnunet_clip.sides``).

An ``AtomTable`` is one dataset's atoms: label value <-> the set of classes it stands for
(dataset.json ``labels``), with the vocabulary's unsided names. ``DEFAULT_ATOMS`` is that of the
32 universal classes; the sources' own tables are checked against it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from nnunet_clip import taxonomy
from nnunet_clip.geometry import Geometry, body_midline_x
from nnunet_clip.sides import patient_left
from nnunet_clip.vocabulary import DEFAULT, Vocabulary


class AtomTable:
    """Label value <-> set of classes of one dataset, and its unsided names."""

    def __init__(self, labels: Mapping, vocabulary: Vocabulary):
        self.classes: dict[int, frozenset[str]] = {0: frozenset(), **taxonomy.atom_table(dict(labels))}
        self.value: dict[frozenset[str], int] = {atom: v for v, atom in self.classes.items()}
        self.unsided: dict[str, tuple[str, str]] = vocabulary.unsided()
        self.order = {n: i for i, n in enumerate(vocabulary.names)}
        self.dtype = np.uint8 if max(self.classes) < 256 else np.uint16

    @classmethod
    def of(cls, vocabulary: Vocabulary) -> "AtomTable":
        """The table of a new dataset holding every class of ``vocabulary``."""
        return cls(vocabulary.labels()[0], vocabulary)

    def sided(self, classes: Iterable[str], side: int) -> frozenset[str]:
        """``classes`` with each unsided name replaced by its right (side 0) or left (side 1) class."""
        return frozenset(self.unsided[c][side] if c in self.unsided else c for c in classes)

    def is_atom(self, classes: Iterable[str]) -> bool:
        """Whether one voxel may belong to exactly these classes (unsided names allowed)."""
        classes = frozenset(classes)
        return not classes or self.sided(classes, 0) in self.value

    def resolve(self, classes: Sequence[str]) -> tuple[str, ...]:
        """The atom kept from ``classes`` listed by priority: each class is added if the set stays an atom."""
        kept: list[str] = []
        for c in classes:
            if c not in kept and self.is_atom([*kept, c]):
                kept.append(c)
        return tuple(kept)

    def expand(self, classes: Iterable[str]) -> list[str]:
        """Class names of ``classes``: unsided names become both sides; in vocabulary order."""
        out = {side for c in classes for side in self.unsided.get(c, (c,))}
        return sorted(out, key=lambda n: (self.order.get(n, len(self.order)), n))

    def value_table(self, mapping: Mapping) -> dict:
        """A source's label value (or mask file) -> classes table, checked: each entry one atom."""
        table = {}
        for key, classes in mapping.items():
            names = tuple(c if c in self.unsided else taxonomy.canonical_name(c) for c in classes)
            if self.resolve(names) != names:
                raise ValueError(f"{key}: {names} is not one label atom")
            table[key] = names
        return table

    def luts(self, classes: Mapping[int, Sequence[str]], n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Lookup tables over codes ``0..n-1``: atom value if unsided names are right, if left, and,
        per unsided name present, whether a code contains it."""
        right = np.zeros(n, self.dtype)
        left = np.zeros(n, self.dtype)
        members: dict[str, np.ndarray] = {}
        for code, names in classes.items():
            if not 0 < code < n:
                continue
            atom = self.resolve(names)
            if not atom:
                continue
            right[code] = self.value[self.sided(atom, 0)]
            left[code] = self.value[self.sided(atom, 1)]
            for c in atom:
                if c in self.unsided:
                    members.setdefault(c, np.zeros(n, bool))[code] = True
        return right, left, members

    def to_atoms(self, labels: "LabelMap", image) -> np.ndarray:
        """Atom values of ``labels``, unsided names split by side in world space."""
        codes = labels.codes
        n = int(codes.max()) + 1 if codes.size else 1
        right, left, members = self.luts(labels.classes, n)
        if not members:
            return right[codes]
        geometry = Geometry.of(image)
        midline = body_midline_x(sitk.GetArrayViewFromImage(image), geometry)
        on_left = np.zeros(codes.shape, bool)
        for member in members.values():
            on_left |= patient_left(member[codes], geometry, midline)
        return np.where(on_left, left[codes], right[codes])


DEFAULT_ATOMS = AtomTable.of(DEFAULT)
"""The atoms of the 32 universal classes (what ``dataset_labels()`` numbers)."""

UNSIDED: dict[str, tuple[str, str]] = DEFAULT_ATOMS.unsided
"""Unsided universal organ name -> (patient's right class, patient's left class)."""


def expand(classes: Iterable[str]) -> list[str]:
    """Universal class names of ``classes``: unsided organs become both sides, universal order."""
    return DEFAULT_ATOMS.expand(classes)


def value_table(mapping: Mapping) -> dict:
    """A source's label value (or mask file) -> universal classes table, checked: each entry one atom."""
    return DEFAULT_ATOMS.value_table(mapping)


def classes_of(values: Mapping[int, Sequence[str]]) -> tuple[str, ...]:
    """Every class named in a label-value table, in value order: what a source annotating all its values annotates."""
    return tuple(c for names in values.values() for c in names)


@dataclass
class LabelMap:
    """Codes per voxel (SimpleITK array order of the image) and the classes of each code.

    ``classes[code]`` lists the classes by priority (``AtomTable.resolve`` keeps the first ones when
    the set is not an atom); code 0 and codes missing from ``classes`` are background.
    """

    codes: np.ndarray
    classes: dict[int, tuple[str, ...]]

    @classmethod
    def from_masks(cls, masks: Iterable[tuple[np.ndarray, Sequence[str]]]) -> "LabelMap":
        """Combine binary masks of (possibly overlapping) structures; a later mask has priority."""
        codes: np.ndarray | None = None
        classes: dict[int, tuple[str, ...]] = {0: ()}
        index = {(): 0}
        for mask, names in masks:
            if codes is None:
                codes = np.zeros(mask.shape, np.uint16)
            old = codes[mask]
            uniq, inverse = np.unique(old, return_inverse=True)
            new = np.empty(len(uniq), np.uint16)
            for i, code in enumerate(uniq):
                combined = tuple(dict.fromkeys([*names, *classes[int(code)]]))
                if combined not in index:
                    index[combined] = len(index)
                    classes[index[combined]] = combined
                new[i] = index[combined]
            codes[mask] = new[inverse.ravel()]
        if codes is None:
            raise ValueError("no masks")
        return cls(codes, classes)
