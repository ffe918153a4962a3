"""The patient's right and left, from world coordinates, never from array order: one rule for the
converters (an unsided organ split into its right and left class) and for prediction (a sided
organ's components moved to the side they lie on).

World space is LPS: world x grows toward the patient's LEFT. Each connected component
(26-connectivity) goes to the side of the body's midline (``geometry.body_midline_x``) that its
centroid lies on; a component with at least ``STRADDLE`` of its voxels on each side (a horseshoe
kidney, lungs joined by the trachea) is cut at the midline instead.
"""
from __future__ import annotations

import numpy as np

from nnunet_clip.components import bounding_box, label_components
from nnunet_clip.geometry import Geometry

STRADDLE = 0.2


def _world_x(geometry: Geometry, box: tuple[slice, ...]) -> tuple[np.ndarray, float]:
    """World x of the voxels of the box's first slice (shape y, x), and its change per slice."""
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    sx, sy, sz = geometry.spacing
    z, y, x = (np.arange(s.start, s.stop) for s in box)
    plane = (geometry.origin[0] + direction[0, 0] * sx * x[None, :] + direction[0, 1] * sy * y[:, None]
             + direction[0, 2] * sz * z[0])
    return plane, float(direction[0, 2] * sz)


def patient_left(mask: np.ndarray, geometry: Geometry, midline_x: float) -> np.ndarray:
    """Which voxels of ``mask`` (array order z, y, x) lie on the patient's left, by the rule above."""
    out = np.zeros(mask.shape, bool)
    box = bounding_box(mask)
    if box is None:
        return out
    labels, sizes = label_components(mask, box)
    plane, step = _world_x(geometry, box)
    n = len(sizes)
    sum_x, n_left = np.zeros(n), np.zeros(n)
    for k in range(labels.shape[0]):
        lab = labels[k].ravel()
        x = (plane + step * k).ravel()
        sum_x += np.bincount(lab, weights=x, minlength=n)
        n_left += np.bincount(lab, weights=x > midline_x, minlength=n)
    count = np.maximum(sizes, 1)
    fraction = n_left / count
    side = np.where(sum_x / count > midline_x, 1, 0)
    side[(fraction >= STRADDLE) & (fraction <= 1 - STRADDLE)] = 2
    side[0] = 0
    inside = out[box]
    for k in range(labels.shape[0]):
        s = side[labels[k]]
        inside[k] = (s == 1) | ((s == 2) & (plane + step * k > midline_x))
    return out
