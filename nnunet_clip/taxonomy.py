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
from typing import Collection, Iterable, Mapping, Sequence

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


LESION_WORDS = frozenset({"tumor", "tumour", "tumors", "tumours", "cyst", "cysts", "lesion", "lesions", "cancer",
                          "carcinoma", "metastasis", "metastases", "nodule", "nodules"})
"""A class whose name holds one of these words is a lesion (tumour detection, post-processing)."""

SIDE_WORDS = ("right", "left")


def normalise(name: str) -> str:
    """``name`` in lower case, with ``_`` and ``-`` as spaces and runs of spaces as one."""
    return re.sub(r"\s+", " ", name.replace("_", " ").replace("-", " ")).strip().lower()


def canonical_name(name: str) -> str:
    """The stored form of a class name: a universal class for its name or an alias (any case and
    spacing), else the normalised name itself, a class outside the default vocabulary."""
    key = normalise(name)
    return key if key in CLASS_INDEX else _ALIASES.get(key, key)


def is_known(name: str) -> bool:
    """Whether ``name`` is a universal class or one of its aliases."""
    return canonical_name(name) in CLASS_INDEX


def is_lesion(name: str) -> bool:
    """Whether the class is a lesion: a word of its name is in ``LESION_WORDS`` (every universal tumour
    and the kidney cyst are)."""
    return not LESION_WORDS.isdisjoint(canonical_name(name).split())


def side_of(name: str) -> str | None:
    """"right" or "left" when that word is part of the class name, else None."""
    words = canonical_name(name).split()
    found = [s for s in SIDE_WORDS if s in words]
    return found[0] if len(found) == 1 else None


def other_side(name: str) -> str:
    """``name`` with its side word swapped ("rib left 1" -> "rib right 1")."""
    swap = dict(zip(SIDE_WORDS, reversed(SIDE_WORDS)))
    return " ".join(swap.get(w, w) for w in canonical_name(name).split())


def without_side(name: str) -> str:
    """``name`` without its side word ("right adrenal gland" -> "adrenal gland")."""
    return " ".join(w for w in canonical_name(name).split() if w not in SIDE_WORDS)


def sort_classes(names: Iterable[str]) -> list[str]:
    """Canonical names, duplicates removed: universal classes in universal order, then the others
    alphabetically."""
    return sorted({canonical_name(n) for n in names}, key=lambda n: (CLASS_INDEX.get(n, len(CLASS_INDEX) + 1), n))


def _host_sets(name: str, parents: Mapping[str, Sequence[str]], seen: frozenset[str] = frozenset()) -> list[frozenset[str]]:
    """Each set of classes that ``name`` can lie inside: a parent, with any of that parent's own host sets."""
    if name in seen:
        raise ValueError(f"class {name!r} lies inside itself (parents: {' -> '.join([*seen, name])})")
    out = []
    for parent in parents.get(name, ()):
        out.append(frozenset([parent]))
        out.extend(frozenset([parent]) | h for h in _host_sets(parent, parents, seen | {name}))
    return out


def label_atoms(classes: Sequence[str], parents: Mapping[str, Sequence[str]]) -> tuple[frozenset[str], ...]:
    """Every set of ``classes`` one voxel can belong to: each class alone, then each class with each
    set of hosts it can lie inside, in the order of ``classes``."""
    hosted = [frozenset([c]) | hosts for c in classes for hosts in _host_sets(c, parents) if hosts <= set(classes)]
    return tuple(dict.fromkeys([frozenset([c]) for c in classes] + hosted))


ATOMS: tuple[frozenset[str], ...] = label_atoms(CLASS_NAMES, PARENTS)
"""Every set of universal classes one voxel can belong to: each class alone, each structure with its host."""


def export_atom(name: str, classes: Collection[str], parents: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The atom a voxel of ``name`` alone is exported as: with its host (and the host's) where it has
    exactly one among ``classes``; alone where it has none or two (a kidney tumour: the side is not known)."""
    hosts = [p for p in parents.get(name, ()) if p in classes]
    return frozenset([name]) | (export_atom(hosts[0], classes, parents) if len(hosts) == 1 else frozenset())


def region_labels(classes: Sequence[str], parents: Mapping[str, Sequence[str]],
                  atoms: Sequence[frozenset[str]] | None = None) -> tuple[dict, list[int]]:
    """``labels`` and ``regions_class_order`` of a dataset.json holding ``classes`` (in this order).

    ``atoms`` (default ``label_atoms(classes, parents)``) are numbered 1, 2, ... so that the label
    values are consecutive as nnU-Net requires; each class is the region of the atoms holding it.
    """
    atoms = list(label_atoms(classes, parents) if atoms is None else atoms)
    value = {a: i + 1 for i, a in enumerate(atoms)}
    labels: dict = {"background": 0}
    for c in classes:
        labels[c] = [value[a] for a in atoms if c in a]
    return labels, [value[export_atom(c, classes, parents)] for c in classes]


def dataset_labels(class_names: Iterable[str] = CLASS_NAMES) -> tuple[dict, list[int]]:
    """``labels`` and ``regions_class_order`` of a dataset.json holding universal ``class_names``.

    Atoms are the subsets of the given classes in ``ATOMS`` order. For export, a structure with one
    possible host is written as the atom {host, structure}; one with two hosts (kidney tumour, lung
    tumour) as the structure alone, since the side is not known from the region alone.
    """
    classes = sort_classes(class_names)
    return region_labels(classes, PARENTS, [a for a in ATOMS if a <= set(classes)])


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
