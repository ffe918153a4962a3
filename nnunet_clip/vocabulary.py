"""The classes of one dataset: the 32 universal classes and any the dataset adds.

A class is a name, stored in its canonical form (``taxonomy.canonical_name``: aliases of the
universal classes resolved, otherwise lower case with single spaces); lookups accept any case
and spacing. The universal classes keep their aliases, parents and sides. A dataset may add
classes, each with optional parents (the classes it lies inside, as a lesion inside an organ)
and an optional side ("right" or "left"). dataset.json lists them under ``added_classes``::

    "added_classes": {"uterus": {}, "liver lesion": {"parents": ["liver"]},
                      "rib left 1": {"side": "left"}, "rib right 1": {"side": "right"}}

Two classes with opposite sides whose names differ only in the side word form a *sided pair*
("right kidney" / "left kidney", "rib right 1" / "rib left 1"): post-processing assigns their
components to the patient's side, and the pair's name without the side word ("kidney", "rib 1")
is an *unsided* name that converters split into the pair in world coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from nnunet_clip.taxonomy import (CLASS_NAMES, PARENTS, SIDE_WORDS, canonical_name, label_atoms,
                                  other_side, region_labels, side_of, without_side)

ADDED_CLASSES_KEY = "added_classes"
ANNOTATED_KEY = "annotated_classes"
"""dataset.json: case identifier -> the classes that case annotates (the others are unknown for it)."""


@dataclass(frozen=True)
class ClassInfo:
    """What a class brings besides its name: the classes it lies inside, and its side."""

    parents: tuple[str, ...] = ()
    side: str | None = None

    def __post_init__(self):
        if self.side not in (None, *SIDE_WORDS):
            raise ValueError(f"side {self.side!r}: use one of {', '.join(SIDE_WORDS)}")

    def to_json(self) -> dict:
        return {**({"parents": list(self.parents)} if self.parents else {}), **({"side": self.side} if self.side else {})}


class Vocabulary:
    """The universal classes plus ``added`` ones (canonical name -> ``ClassInfo``), in that order."""

    def __init__(self, added: Mapping[str, ClassInfo] | None = None):
        self.added: dict[str, ClassInfo] = dict(added or {})
        self.names: tuple[str, ...] = CLASS_NAMES + tuple(self.added)
        self.parents: dict[str, tuple[str, ...]] = {
            **PARENTS, **{n: info.parents for n, info in self.added.items() if info.parents}}
        self.sides: dict[str, str] = {
            **{n: side_of(n) for n in CLASS_NAMES if side_of(n)}, **{n: info.side for n, info in self.added.items() if info.side}}
        self._index = {n: i for i, n in enumerate(self.names)}
        for name, parents in self.parents.items():
            unknown = [p for p in parents if p not in self._index]
            if unknown:
                raise ValueError(f"class {name!r}: its parent {unknown[0]!r} is not a class")
        label_atoms(self.names, self.parents)  # raises on a class inside itself

    @classmethod
    def of_dataset(cls, dataset_json: Mapping) -> "Vocabulary":
        """The vocabulary of a dataset.json: the universal classes and its ``added_classes``."""
        entries = dataset_json.get(ADDED_CLASSES_KEY) or {}
        return cls({canonical_name(name): ClassInfo(tuple(canonical_name(p) for p in entry.get("parents", ())),
                                                    entry.get("side"))
                    for name, entry in entries.items()})

    def to_json(self) -> dict:
        """The ``added_classes`` entry of dataset.json."""
        return {name: info.to_json() for name, info in self.added.items()}

    def __contains__(self, name: str) -> bool:
        return canonical_name(name) in self._index

    def with_classes(self, classes: Mapping[str, ClassInfo]) -> "Vocabulary":
        """This vocabulary with ``classes`` added; a class it holds already must come with no other parents or side."""
        added = dict(self.added)
        for name, info in classes.items():
            name = canonical_name(name)
            if name not in self._index:
                added[name] = info
            elif (info.parents or info.side) and (self.parents.get(name, ()), self.sides.get(name)) != (info.parents, info.side):
                raise ValueError(f"class {name!r} is defined already, with parents {list(self.parents.get(name, ()))} "
                                 f"and side {self.sides.get(name)}")
        return Vocabulary(added)

    def sort(self, names: Iterable[str]) -> list[str]:
        """Canonical names, duplicates removed, in vocabulary order; names outside it last, alphabetically."""
        return sorted({canonical_name(n) for n in names}, key=lambda n: (self._index.get(n, len(self._index)), n))

    def sided_pairs(self) -> list[tuple[str, str]]:
        """(patient's right, patient's left) classes of each sided pair, in vocabulary order."""
        return [(n, other_side(n)) for n in self.names
                if self.sides.get(n) == "right" and self.sides.get(other_side(n)) == "left"]

    def unsided(self) -> dict[str, tuple[str, str]]:
        """Unsided name -> (right, left) class of its pair ("kidney" -> ("right kidney", "left kidney"))."""
        return {without_side(right): (right, left) for right, left in self.sided_pairs()
                if without_side(right) not in self._index}

    def labels(self, classes: Iterable[str] | None = None) -> tuple[dict, list[int]]:
        """``labels`` and ``regions_class_order`` of a dataset.json holding ``classes`` (default: all)."""
        return region_labels(self.names if classes is None else self.sort(classes), self.parents)


DEFAULT = Vocabulary()
"""The 32 universal classes."""
