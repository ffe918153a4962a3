"""The universal classes: names, parents (tumours inside organs), aliases, label atoms.

Everything that names a class imports it from here. Names are the lower-case names of the
CLIP-Driven Universal Model paper; ``canonical_name`` maps the spellings of the source datasets
(and of the authors' code) to them.

Label files store one integer per voxel, an *atom*: a set of classes that may share a voxel
(an organ alone, or a tumour together with its host organ). Each class is an nnU-Net region:
the set of atoms that contain it. ``dataset_labels`` writes the matching ``labels`` and
``regions_class_order`` of a dataset.json.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

CLASS_NAMES: tuple[str, ...] = (
    "spleen",
    "right kidney",
    "left kidney",
    "gall bladder",
    "esophagus",
    "liver",
    "stomach",
    "aorta",
    "postcava",
    "portal vein and splenic vein",
    "pancreas",
    "right adrenal gland",
    "left adrenal gland",
    "duodenum",
    "hepatic vessel",
    "right lung",
    "left lung",
    "colon",
    "intestine",
    "rectum",
    "bladder",
    "prostate",
    "left head of femur",
    "right head of femur",
    "celiac trunk",
    "kidney tumor",
    "liver tumor",
    "pancreas tumor",
    "hepatic vessel tumor",
    "lung tumor",
    "colon tumor",
    "kidney cyst",
)
"""The 32 universal classes; class ``i`` of the paper is ``CLASS_NAMES[i - 1]``."""

CLASS_INDEX: dict[str, int] = {name: i + 1 for i, name in enumerate(CLASS_NAMES)}

PARENTS: dict[str, tuple[str, ...]] = {
    "hepatic vessel": ("liver",),
    "kidney tumor": ("right kidney", "left kidney"),
    "liver tumor": ("liver",),
    "pancreas tumor": ("pancreas",),
    "hepatic vessel tumor": ("liver",),
    "lung tumor": ("right lung", "left lung"),
    "colon tumor": ("colon",),
    "kidney cyst": ("right kidney", "left kidney"),
}
"""The organ(s) a structure lies inside; a structure with two lies in one of them."""

TUMORS: tuple[str, ...] = tuple(n for n in CLASS_NAMES if n.endswith("tumor") or n.endswith("cyst"))

SIDED_PAIRS: tuple[tuple[str, str], ...] = (
    ("right kidney", "left kidney"),
    ("right adrenal gland", "left adrenal gland"),
    ("right lung", "left lung"),
    ("right head of femur", "left head of femur"),
)
"""(patient's right, patient's left) pairs of organs."""

_ALIASES: dict[str, str] = {
    "background": "background",
    "inferior vena cava": "postcava",
    "ivc": "postcava",
    "vena cava inferior": "postcava",
    "inferior_vena_cava": "postcava",
    "arota": "aorta",
    "gallbladder": "gall bladder",
    "celiac truck": "celiac trunk",
    "coeliac trunk": "celiac trunk",
    "portal vein & splenic vein": "portal vein and splenic vein",
    "portal and splenic vein": "portal vein and splenic vein",
    "portal vein and splenic vein": "portal vein and splenic vein",
    "adrenal gland right": "right adrenal gland",
    "adrenal gland left": "left adrenal gland",
    "right adrenal": "right adrenal gland",
    "left adrenal": "left adrenal gland",
    "kidney right": "right kidney",
    "kidney left": "left kidney",
    "lung right": "right lung",
    "lung left": "left lung",
    "head of femur left": "left head of femur",
    "head of femur right": "right head of femur",
    "left femoral head": "left head of femur",
    "right femoral head": "right head of femur",
    "oesophagus": "esophagus",
    "small bowel": "intestine",
    "small intestine": "intestine",
    "urinary bladder": "bladder",
    "liver tumour": "liver tumor",
    "kidney tumour": "kidney tumor",
    "pancreas tumour": "pancreas tumor",
    "pancreatic tumor": "pancreas tumor",
    "hepatic vessel tumour": "hepatic vessel tumor",
    "lung tumour": "lung tumor",
    "colon tumour": "colon tumor",
    "colon cancer": "colon tumor",
    "hepatic vessels": "hepatic vessel",
    "liver vessels": "hepatic vessel",
    "kidney cysts": "kidney cyst",
}


def _normalise(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("_", " ").replace("-", " ")).strip().lower()


def canonical_name(name: str) -> str:
    """The universal class name of ``name`` (case-insensitive, aliases accepted); KeyError if unknown."""
    key = _normalise(name)
    if key in CLASS_INDEX:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise KeyError(f"unknown class name {name!r}; known: {', '.join(CLASS_NAMES)}")


def is_known(name: str) -> bool:
    """Whether ``name`` is a universal class or one of its aliases."""
    try:
        canonical_name(name)
    except KeyError:
        return False
    return True


def _all_atoms() -> tuple[frozenset[str], ...]:
    singletons = [frozenset([n]) for n in CLASS_NAMES]
    hosted = sorted(((CLASS_INDEX[child], CLASS_INDEX[parent]), frozenset([parent, child]))
                    for child, parents in PARENTS.items() for parent in parents)
    return tuple(singletons + [atom for _, atom in hosted])


ATOMS: tuple[frozenset[str], ...] = _all_atoms()
"""Every set of classes one voxel can belong to: each class alone, each structure with its host."""


def sort_classes(names: Iterable[str]) -> list[str]:
    """Canonical names in universal order, duplicates removed."""
    return sorted({canonical_name(n) for n in names}, key=CLASS_INDEX.__getitem__)


def dataset_labels(class_names: Sequence[str] = CLASS_NAMES) -> tuple[dict, list[int]]:
    """``labels`` and ``regions_class_order`` of a dataset.json holding ``class_names``.

    Atoms are the subsets of the given classes in ``ATOMS`` order, numbered 1, 2, ... so that the
    label values are consecutive as nnU-Net requires. For export, a structure with one possible
    host is written as the atom {host, structure}; one with two hosts (kidney tumour, lung tumour)
    as the structure alone, since the side is not known from the region alone.
    """
    classes = sort_classes(class_names)
    atoms = [a for a in ATOMS if a <= set(classes)]
    value = {a: i + 1 for i, a in enumerate(atoms)}
    labels: dict = {"background": 0}
    order = []
    for c in classes:
        labels[c] = [value[a] for a in atoms if c in a]
        hosts = [p for p in PARENTS.get(c, ()) if p in classes]
        export_atom = frozenset([c, hosts[0]]) if len(hosts) == 1 else frozenset([c])
        order.append(value[export_atom])
    return labels, order


def atom_table(labels: dict) -> dict[int, frozenset[str]]:
    """Label value -> the set of classes it belongs to, from a dataset.json ``labels`` dict."""
    table: dict[int, set[str]] = {}
    for name, values in labels.items():
        if name in ("background", "ignore"):
            continue
        for v in ([values] if isinstance(values, int) else values):
            table.setdefault(int(v), set()).add(name)
    return {v: frozenset(s) for v, s in sorted(table.items())}


def region_class_names(labels: dict) -> list[str]:
    """The class names of a dataset.json ``labels`` dict, in the order of the network's outputs."""
    return [k for k, v in labels.items() if k not in ("background", "ignore") and v not in (0, [0])]
