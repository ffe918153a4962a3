"""Patient-level tumour detection (the paper's Table 4).

A case is reference-positive for a tumour class when its reference mask has any voxel, and
predicted-positive when the largest 26-connected component of the predicted mask is larger than
a minimum volume (``DEFAULT_MIN_TUMOR_ML``, our choice: 0.1 ml, a ball of about 5.8 mm diameter),
so that isolated specks of false-positive voxels do not count as a detection.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.ndimage import generate_binary_structure, label

DEFAULT_MIN_TUMOR_ML = 0.1


def largest_component_ml(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Volume in ml of the largest 26-connected (full-connectivity) component of a boolean mask."""
    if not mask.any():
        return 0.0
    components, n = label(mask, structure=generate_binary_structure(mask.ndim, mask.ndim))
    largest = np.bincount(components.ravel())[1:].max() if n else 0
    return float(largest) * float(np.prod(spacing)) / 1000.0


def detection_scores(ref_positive: Sequence[bool], pred_positive: Sequence[bool]) -> dict:
    """Counts and rates of a patient-level detection.

    Returns ``cases, tp, fn, tn, fp, sensitivity = tp/(tp+fn), specificity = tn/(tn+fp),
    harmonic_mean = 2·sens·spec/(sens+spec)``; a rate without cases to compute it from is None,
    and so is the harmonic mean then.
    """
    ref = np.asarray(ref_positive, dtype=bool)
    pred = np.asarray(pred_positive, dtype=bool)
    tp, fn = int(np.sum(ref & pred)), int(np.sum(ref & ~pred))
    tn, fp = int(np.sum(~ref & ~pred)), int(np.sum(~ref & pred))
    sensitivity = tp / (tp + fn) if tp + fn else None
    specificity = tn / (tn + fp) if tn + fp else None
    if sensitivity is None or specificity is None:
        harmonic = None
    else:
        total = sensitivity + specificity
        harmonic = 2 * sensitivity * specificity / total if total else 0.0
    return {"cases": int(ref.size), "tp": tp, "fn": fn, "tn": tn, "fp": fp,
            "sensitivity": sensitivity, "specificity": specificity, "harmonic_mean": harmonic}
