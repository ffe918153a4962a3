"""Recognising one CT scan stored twice, from voxel content alone.

Headers are not trusted: LiTS 28-47 carry identity affines while 3D-IRCADb has the true
geometry, and the same scan comes as NIfTI int16, float32 or DICOM. A *fingerprint* is the sorted
array shape, a coarse histogram of the HU values and their mean, all unchanged by any axis
permutation, flip, header or dtype. ``DuplicateIndex`` files fingerprints by shape and mean
(``MEAN_CELL_HU`` wide cells): a new scan is compared only with the stored scans of its shape
whose mean lies in its cell or a neighbouring one and whose histogram is close; first by
thumbnails (``THUMBNAIL_SIZE`` voxels per axis) under every permutation and flip of the axes,
then voxel by voxel under the transforms whose thumbnails agree. The scans are one when at most
``MAX_DIFFERENT`` of the voxels differ by more than 1 HU (values clipped to ``HU_RANGE``): such
copies differ in mean by at most ``MAX_DIFFERENT`` x 4095 + 1 HU, well within one cell.
"""
from __future__ import annotations

import itertools
from collections import Counter
from typing import Iterable, Mapping

import numpy as np

from dataset_conversion.labels import AtomTable

HU_RANGE = (-1024, 3071)
BINS = np.array([-1024, -900, -700, -500, -300, -150, -75, -25, 0, 25, 50, 75, 100, 150, 250, 400,
                 700, 1000, 1500, 3072])
HISTOGRAM_TOLERANCE = 0.02
MAX_DIFFERENT = 1e-3
MAX_DIFFERENT_THUMBNAIL = 1e-2
THUMBNAIL_SIZE = 8
MEAN_CELL_HU = 8.0

Transform = tuple[tuple[int, ...], tuple[int, ...]]
"""(axis permutation, flipped axes) taking a new array onto an existing case's array."""


def _clipped(array: np.ndarray) -> np.ndarray:
    return np.clip(array, *HU_RANGE).astype(np.int16)


def _hu_counts(array: np.ndarray) -> np.ndarray:
    """Voxels per HU value of ``HU_RANGE`` (values clipped to it), counted a few slices at a time."""
    counts = np.zeros(HU_RANGE[1] - HU_RANGE[0] + 1, np.int64)
    for k in range(0, len(array), 8):
        counts += np.bincount((_clipped(array[k:k + 8]) - np.int16(HU_RANGE[0])).ravel(), minlength=len(counts))
    return counts


def fingerprint(array: np.ndarray) -> str:
    """``"<sorted shape>:<histogram>:<mean HU>"``, the histogram as thousandths in hexadecimal."""
    counts = _hu_counts(array)
    size = max(array.size, 1)
    shares = np.rint(1000 * np.add.reduceat(counts, BINS[:-1] - HU_RANGE[0]) / size).astype(int)
    mean = float(counts @ np.arange(HU_RANGE[0], HU_RANGE[1] + 1)) / size
    return "x".join(map(str, sorted(array.shape))) + ":" + "".join(f"{s:03x}" for s in shares) + f":{mean:.1f}"


def similar(a: str, b: str) -> bool:
    """Whether two fingerprints may belong to one scan."""
    shape_a, hist_a, _ = a.split(":")
    shape_b, hist_b, _ = b.split(":")
    if shape_a != shape_b or len(hist_a) != len(hist_b):
        return False
    ha = np.array([int(hist_a[i:i + 3], 16) for i in range(0, len(hist_a), 3)])
    hb = np.array([int(hist_b[i:i + 3], 16) for i in range(0, len(hist_b), 3)])
    return np.abs(ha - hb).sum() <= 1000 * HISTOGRAM_TOLERANCE


class DuplicateIndex:
    """Stored fingerprints filed by (sorted shape, mean cell), for the candidates of a new scan."""

    def __init__(self):
        self._cells: dict[tuple[str, int], list[tuple[int, str, str]]] = {}
        self._size = 0

    @staticmethod
    def _key(fingerprint: str) -> tuple[str, int]:
        shape, _, mean = fingerprint.split(":")
        return shape, int(np.floor(float(mean) / MEAN_CELL_HU))

    def add(self, case_id: str, fingerprint: str) -> None:
        self._cells.setdefault(self._key(fingerprint), []).append((self._size, case_id, fingerprint))
        self._size += 1

    def candidates(self, fingerprint: str) -> list[str]:
        """The stored cases that may be the scan of ``fingerprint``, in the order they were added."""
        shape, cell = self._key(fingerprint)
        near = sorted(entry for c in (cell - 1, cell, cell + 1) for entry in self._cells.get((shape, c), ()))
        return [case for _, case, other in near if similar(fingerprint, other)]


def apply(array: np.ndarray, transform: Transform) -> np.ndarray:
    """``array`` with its axes permuted, then flipped."""
    permutation, flips = transform
    out = np.transpose(array, permutation)
    return np.flip(out, flips) if flips else out


TRANSFORMS: tuple[Transform, ...] = tuple((permutation, flips) for permutation in itertools.permutations(range(3))
                                          for n_flips in range(4) for flips in itertools.combinations(range(3), n_flips))
"""Every axis permutation with every set of flipped axes, the identity first."""


def thumbnail(array: np.ndarray) -> np.ndarray:
    """``THUMBNAIL_SIZE`` voxels per axis of ``array`` (every n-th one, clipped HU): what a scan is compared by
    before its voxels are."""
    steps = tuple(max(1, s // THUMBNAIL_SIZE) for s in array.shape)
    return _clipped(array[::steps[0], ::steps[1], ::steps[2]])


def thumbnails(array: np.ndarray) -> dict[Transform, np.ndarray]:
    """The thumbnail of ``array`` under every transform, to be compared with stored scans' own thumbnails."""
    return {t: thumbnail(apply(array, t)) for t in TRANSFORMS}


def _same(a: np.ndarray, b: np.ndarray, limit: float) -> bool:
    different = np.count_nonzero(np.abs(a.astype(np.int32) - b) > 1)
    return different <= limit * a.size


def matching_transforms(new: Mapping[Transform, np.ndarray], existing: np.ndarray) -> list[Transform]:
    """The transforms under which the thumbnails ``new`` (of ``thumbnails``) agree with ``existing``'s thumbnail."""
    return [t for t, th in new.items() if th.shape == existing.shape and _same(th, existing, MAX_DIFFERENT_THUMBNAIL)]


def alignment(new: np.ndarray, existing: np.ndarray, transforms: Iterable[Transform] | None = None) -> Transform | None:
    """The axis permutation and flips (of ``transforms``, default those whose thumbnails agree) that make
    ``new`` the same scan as ``existing``, if any."""
    if transforms is None:
        transforms = matching_transforms(thumbnails(new), thumbnail(existing))
    clipped = _clipped(existing)
    for transform in transforms:
        candidate = apply(new, transform)
        if candidate.shape == clipped.shape and _same(_clipped(candidate), clipped, MAX_DIFFERENT):
            return transform
    return None


def merge_atoms(a: np.ndarray, b: np.ndarray, annotated_a: Iterable[str], annotated_b: Iterable[str],
                table: AtomTable) -> tuple[np.ndarray, dict[str, int]]:
    """One label of two copies of a scan (atom values, same array space).

    ``a`` (the case already in the dataset) keeps its classes; ``b`` adds the classes that only it
    annotates wherever they form an atom with ``a``'s. Returns the merged atoms and, per class,
    the voxels where the copies disagree (a class both annotate) or where ``b``'s class had to be
    dropped (it cannot share the voxel with ``a``'s class).
    """
    n = max(table.classes) + 1
    pairs = a.astype(np.int64) * n + b
    counts = np.bincount(pairs.ravel(), minlength=n * n)
    shared = set(annotated_a) & set(annotated_b)
    only_b = set(annotated_b) - set(annotated_a)
    lut = np.zeros(n * n, table.dtype)
    conflicts: Counter[str] = Counter()
    for pair in np.flatnonzero(counts):
        in_a, in_b = table.classes[pair // n], table.classes[pair % n]
        for c in shared:
            if (c in in_a) != (c in in_b):
                conflicts[c] += int(counts[pair])
        added = sorted(c for c in in_b if c in only_b)
        kept = table.resolve([*in_a, *added])
        for c in added:
            if c not in kept:
                conflicts[c] += int(counts[pair])
        lut[pair] = table.value[frozenset(kept)]
    return lut[pairs], dict(conflicts)
