"""Connected components of binary masks, labelled inside the mask's bounding box only."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
"""26-connectivity: voxels touching by a face, an edge or a corner are one component."""


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """The smallest box holding the mask, widened by ``margin`` voxels within the array; None if empty."""
    found = ndimage.find_objects(mask.view(np.uint8)) if mask.size else None
    if not found:
        return None
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(found[0], mask.shape))


def grown(region: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """``region`` (a box) widened by one voxel within an array of ``shape``."""
    return tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(region, shape))


def label_components(mask: np.ndarray, box: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Component labels of ``mask[box]`` (0: background) and the voxel count of each label."""
    labels, _ = ndimage.label(mask[box], structure=CONNECTIVITY)
    return labels, np.bincount(labels.ravel(), minlength=1)


def keep_labels(mask: np.ndarray, box: tuple[slice, ...], labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A copy of ``mask`` with only the components ``keep`` (a boolean per label) inside ``box``."""
    keep = keep.copy()
    keep[0] = False
    out = np.zeros_like(mask)
    out[box] = keep[labels]
    return out
