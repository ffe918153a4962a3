"""Default NSD tolerances in mm per universal class, and ``NAME=MM`` overrides.

The values are this project's choice, not taken from the paper (which reports NSD without a
per-class table): about the boundary uncertainty between annotators at abdominal CT resolution.
Large organs 3 mm, mid-sized organs 2 mm, vessels and adrenal glands 1.5 mm, tumours and cysts
5 mm (their boundaries are the least certain). A class outside the taxonomy gets 2 mm.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import CLASS_NAMES, TUMORS, canonical_name

_LARGE = ("liver", "spleen", "stomach", "right lung", "left lung", "colon", "intestine", "bladder")
_THIN = ("aorta", "postcava", "portal vein and splenic vein", "hepatic vessel", "celiac trunk",
         "right adrenal gland", "left adrenal gland")

FALLBACK_TOLERANCE_MM = 2.0
DEFAULT_TOLERANCE_MM: dict[str, float] = {
    name: 5.0 if name in TUMORS else 3.0 if name in _LARGE else 1.5 if name in _THIN else FALLBACK_TOLERANCE_MM
    for name in CLASS_NAMES
}
"""Universal class -> NSD tolerance in mm."""


def tolerance_mm(name: str, overrides: Mapping[str, float] | None = None) -> float:
    """The NSD tolerance of class ``name``: from ``overrides`` (class names or aliases -> mm), else the default."""
    key = canonical_name(name)
    chosen = {canonical_name(k): float(v) for k, v in (overrides or {}).items()}
    return chosen.get(key, DEFAULT_TOLERANCE_MM.get(key, FALLBACK_TOLERANCE_MM))


def parse_tolerances(items: Iterable[str]) -> dict[str, float]:
    """``["liver=2", "aorta=1"]`` -> {"liver": 2.0, "aorta": 1.0}; InputError on a malformed item."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            mm = float(value)
        except ValueError:
            mm = -1.0
        if not sep or not name.strip() or not mm >= 0 or mm == float("inf"):
            raise InputError(f"--tolerance {item}: expected NAME=MM with a class name and a finite number >= 0")
        out[canonical_name(name.strip())] = mm
    return out
