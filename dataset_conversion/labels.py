"""Per-voxel class sets: from a source's label values or mask files to universal label atoms.

A source case is read into a ``LabelMap``: an integer array of *codes* (a source's own label
values, or combinations of mask files) plus the classes each code stands for. Class names are the
universal names of ``nnunet_clip.taxonomy`` or an unsided organ (``"kidney"``, ``"lung"``,
``"adrenal gland"``, ``"head of femur"``) that ``to_atoms`` splits into the patient's right and
left in world coordinates (``nnunet_clip.sides``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from nnunet_clip import taxonomy
from nnunet_clip.geometry import Geometry, body_midline_x
from nnunet_clip.sides import patient_left

UNSIDED: dict[str, tuple[str, str]] = {
    right.removeprefix("right "): (right, left) for right, left in taxonomy.SIDED_PAIRS
}
"""Unsided organ name -> (patient's right class, patient's left class)."""

ATOM_CLASSES: dict[int, frozenset[str]] = {0: frozenset(), **taxonomy.atom_table(taxonomy.dataset_labels()[0])}
"""Atom value of the universal dataset -> its classes (0: background)."""
ATOM_VALUE: dict[frozenset[str], int] = {atom: v for v, atom in ATOM_CLASSES.items()}


def sided(classes: Iterable[str], side: int) -> frozenset[str]:
    """``classes`` with each unsided organ replaced by its right (side 0) or left (side 1) class."""
    return frozenset(UNSIDED[c][side] if c in UNSIDED else c for c in classes)


def is_atom(classes: Iterable[str]) -> bool:
    """Whether one voxel may belong to exactly these classes (unsided organs allowed)."""
    classes = frozenset(classes)
    return not classes or sided(classes, 0) in ATOM_VALUE


def resolve(classes: Sequence[str]) -> tuple[str, ...]:
    """The atom kept from ``classes`` listed by priority: each class is added if the set stays an atom."""
    kept: list[str] = []
    for c in classes:
        if c not in kept and is_atom([*kept, c]):
            kept.append(c)
    return tuple(kept)


def expand(classes: Iterable[str]) -> list[str]:
    """Universal class names of ``classes``: unsided organs become both sides, universal order."""
    out = []
    for c in classes:
        out.extend(UNSIDED.get(c, (c,)))
    return taxonomy.sort_classes(out)


def classes_of(values: Mapping[int, Sequence[str]]) -> tuple[str, ...]:
    """Every class named in a label-value table, in value order: what a source annotating all its values annotates."""
    return tuple(c for names in values.values() for c in names)


def value_table(mapping: Mapping) -> dict:
    """A source's label value (or mask file) -> classes table, checked: each entry one atom."""
    table = {}
    for key, classes in mapping.items():
        names = tuple(c if c in UNSIDED else taxonomy.canonical_name(c) for c in classes)
        if resolve(names) != names:
            raise ValueError(f"{key}: {names} is not one label atom")
        table[key] = names
    return table


@dataclass
class LabelMap:
    """Codes per voxel (SimpleITK array order of the image) and the classes of each code.

    ``classes[code]`` lists the classes by priority (``resolve`` keeps the first ones when the
    set is not an atom); code 0 and codes missing from ``classes`` are background.
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


def atom_luts(classes: Mapping[int, Sequence[str]], n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Lookup tables over codes ``0..n-1``: atom value if unsided organs are right, if left, and,
    per unsided organ present, whether a code contains it."""
    right = np.zeros(n, np.uint8)
    left = np.zeros(n, np.uint8)
    members: dict[str, np.ndarray] = {}
    for code, names in classes.items():
        if not 0 < code < n:
            continue
        atom = resolve(names)
        if not atom:
            continue
        right[code] = ATOM_VALUE[sided(atom, 0)]
        left[code] = ATOM_VALUE[sided(atom, 1)]
        for c in atom:
            if c in UNSIDED:
                members.setdefault(c, np.zeros(n, bool))[code] = True
    return right, left, members


def to_atoms(labels: LabelMap, image: sitk.Image) -> np.ndarray:
    """Universal atom values (uint8) of ``labels``, unsided organs split by side in world space."""
    codes = labels.codes
    n = int(codes.max()) + 1 if codes.size else 1
    right, left, members = atom_luts(labels.classes, n)
    if not members:
        return right[codes]
    geometry = Geometry.of(image)
    midline = body_midline_x(sitk.GetArrayViewFromImage(image), geometry)
    on_left = np.zeros(codes.shape, bool)
    for member in members.values():
        on_left |= patient_left(member[codes], geometry, midline)
    return np.where(on_left, left[codes], right[codes])
