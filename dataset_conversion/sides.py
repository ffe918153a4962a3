"""The patient's right and left, from world coordinates, never from array order.

SimpleITK's physical space is LPS: world x grows toward the patient's LEFT. The body midline is
the world x of the centroid of the body (voxels above ``BODY_HU``). Each connected component
(26-connectivity) of an unsided organ goes to the side of its centroid; a component with more than
``STRADDLE`` of its voxels on each side of the midline (a horseshoe kidney, lungs joined by the
trachea) is cut at the midline instead.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

BODY_HU = -500
STRADDLE = 0.2


def _world_x(image: sitk.Image) -> tuple[np.ndarray, float]:
    """World x of the voxels of array slice 0 (shape y, x), and its change per slice."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    sx, sy, sz = image.GetSpacing()
    nx, ny = image.GetSize()[:2]
    plane = (image.GetOrigin()[0] + direction[0, 0] * sx * np.arange(nx)[None, :]
             + direction[0, 1] * sy * np.arange(ny)[:, None])
    return plane, float(direction[0, 2] * sz)


def body_midline(image: sitk.Image) -> float:
    """World x (mm) of the body's centroid; the image centre's if no voxel is above ``BODY_HU``."""
    array = sitk.GetArrayViewFromImage(image)
    plane, step = _world_x(image)
    total, count = 0.0, 0
    for k in range(array.shape[0]):
        body = array[k] > BODY_HU
        n = int(np.count_nonzero(body))
        if n:
            total += float(plane[body].sum()) + step * k * n
            count += n
    if count:
        return total / count
    centre = [(s - 1) / 2 for s in image.GetSize()]
    return image.TransformContinuousIndexToPhysicalPoint(centre)[0]


def left_of_midline(mask: np.ndarray, image: sitk.Image, midline: float) -> np.ndarray:
    """Which voxels of ``mask`` (array order of ``image``) lie on the patient's left."""
    components, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    out = np.zeros(mask.shape, bool)
    if n == 0:
        return out
    plane, step = _world_x(image)
    count, sum_x, n_left = (np.zeros(n + 1) for _ in range(3))
    for k in range(mask.shape[0]):
        lab = components[k].ravel()
        if not lab.any():
            continue
        x = (plane + step * k).ravel()
        count += np.bincount(lab, minlength=n + 1)
        sum_x += np.bincount(lab, weights=x, minlength=n + 1)
        n_left += np.bincount(lab, weights=x > midline, minlength=n + 1)
    count[0] = 1
    fraction = n_left / count
    side = np.where(sum_x / count > midline, 1, 0)
    side[(fraction >= STRADDLE) & (fraction <= 1 - STRADDLE)] = 2
    side[0] = 0
    for k in range(mask.shape[0]):
        s = side[components[k]]
        out[k] = (s == 1) | ((s == 2) & (plane + step * k > midline))
    return out
