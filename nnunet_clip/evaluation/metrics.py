"""Dice similarity coefficient and normalised surface Dice of binary masks, in physical space.

NSD follows the definition of MONAI's ``compute_surface_dice`` (``use_subvoxels=False``) and of
Nikolov et al. (arXiv 1809.04430) with surfaces counted in voxels: the surface of a mask is the set
of its voxels with a face neighbour outside it (outside the array counts as outside the mask);
NSD = (|{p in S_pred : d(p, S_ref) <= tau}| + |{r in S_ref : d(r, S_pred) <= tau}|) /
(|S_pred| + |S_ref|), with Euclidean distances in mm between voxel centres (spacing applied per axis).

Conventions: both masks empty -> NaN for DSC and NSD (undefined; left out of means); one empty and
the other not -> 0.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt

from nnunet_clip.components import bounding_box


def dice(ref: np.ndarray, pred: np.ndarray) -> float:
    """2|R∩P| / (|R|+|P|) of two boolean masks; NaN if both are empty."""
    total = np.count_nonzero(ref) + np.count_nonzero(pred)
    if total == 0:
        return math.nan
    return 2.0 * np.count_nonzero(np.logical_and(ref, pred)) / total


def surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with at least one face neighbour outside it (or outside the array)."""
    return mask & ~binary_erosion(mask, border_value=0)


def normalized_surface_dice(ref: np.ndarray, pred: np.ndarray, spacing: Sequence[float],
                            tolerance_mm: float) -> float:
    """NSD of two boolean masks at ``tolerance_mm``; ``spacing`` in mm per array axis.

    NaN if both masks are empty, 0 if exactly one is. Both masks are cropped to the bounding box
    of their union first: every surface voxel lies inside it and the erosion treats the outside
    as background either way, so the result is exact and the distance transforms stay small.
    """
    ref, pred = np.asarray(ref, dtype=bool), np.asarray(pred, dtype=bool)
    if ref.shape != pred.shape or len(spacing) != ref.ndim:
        raise ValueError(f"masks of shapes {ref.shape} and {pred.shape} with spacing {tuple(spacing)}")
    box = bounding_box(ref | pred)
    if box is None:
        return math.nan
    ref, pred = ref[box], pred[box]
    if not ref.any() or not pred.any():
        return 0.0
    ref_surface, pred_surface = surface(ref), surface(pred)
    pred_to_ref = distance_transform_edt(~ref_surface, sampling=spacing)[pred_surface]
    ref_to_pred = distance_transform_edt(~pred_surface, sampling=spacing)[ref_surface]
    within = np.count_nonzero(pred_to_ref <= tolerance_mm) + np.count_nonzero(ref_to_pred <= tolerance_mm)
    return within / (pred_to_ref.size + ref_to_pred.size)
