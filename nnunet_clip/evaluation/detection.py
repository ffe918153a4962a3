"""Tumour detection: per case (the paper's Table 4), per lesion, and presence scores for ROC curves.

- **Case level.** A case is reference-positive for a tumour class when its reference mask has any
  voxel, and predicted-positive when its prediction has a *predicted lesion*: a 26-connected
  component larger than a minimum volume (``DEFAULT_MIN_TUMOR_ML``, our choice: 0.1 ml, a ball of
  about 5.8 mm diameter), so that isolated specks of false-positive voxels do not count.
- **Lesion level.** Reference lesions are the 26-connected components of the reference mask (all
  of them, however small). A reference lesion is *detected* when a predicted lesion shares at
  least one voxel with it; a predicted lesion that shares none with any reference lesion is a
  *false positive*. A lesion's size is the diameter of the ball of its volume.
- **Presence score.** The largest predicted probability of the class inside its predicted host
  organ or its predicted mask (``presence_score``): a case's confidence that the tumour is there,
  for ROC curves over cases.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

from nnunet_clip.components import label_components

DEFAULT_MIN_TUMOR_ML = 0.1

LESION_SIZE_BINS_MM = (10.0, 20.0, 50.0)
"""Edges of the lesion size bins (equivalent diameter, mm): under 10, 10 to 20, 20 to 50, 50 and more."""

LARGE_LESION_MM = 10.0
"""Lesions at least this large (equivalent diameter, mm) get a recall of their own."""
LARGE_LESIONS = f"at_least_{LARGE_LESION_MM:g}mm"


def _whole(mask: np.ndarray) -> tuple[slice, ...]:
    return tuple(slice(0, n) for n in mask.shape)


def largest_component_ml(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Volume in ml of the largest 26-connected (full-connectivity) component of a boolean mask."""
    if not mask.any():
        return 0.0
    _, sizes = label_components(mask, _whole(mask))
    return float(sizes[1:].max()) * float(np.prod(spacing)) / 1000.0


def equivalent_diameter_mm(volume_ml: float) -> float:
    """Diameter (mm) of the ball of ``volume_ml``."""
    return (6 * volume_ml * 1000 / math.pi) ** (1 / 3)


def size_bin(diameter_mm: float) -> str:
    """The ``LESION_SIZE_BINS_MM`` bin of a diameter: "<10", "10-20", "20-50" or ">=50"."""
    edges = LESION_SIZE_BINS_MM
    index = int(np.searchsorted(edges, diameter_mm, side="right"))
    if index == 0:
        return f"<{edges[0]:g}"
    if index == len(edges):
        return f">={edges[-1]:g}"
    return f"{edges[index - 1]:g}-{edges[index]:g}"


SIZE_BINS: tuple[str, ...] = tuple(dict.fromkeys(size_bin(d) for d in (0.0, *LESION_SIZE_BINS_MM)))


def match_lesions(ref: np.ndarray, pred: np.ndarray, spacing: Sequence[float], min_ml: float) -> dict:
    """Lesions of one tumour class in one case (boolean masks of the same shape, spacing in their
    axis order).

    Returns ``lesions`` (each reference lesion's ``volume_ml``, ``diameter_mm`` and ``detected``,
    largest first), ``pred_lesions`` (predicted components larger than ``min_ml``),
    ``false_positive_lesions`` and ``pred_largest_component_ml``.
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    ref_labels, ref_sizes = label_components(ref, _whole(ref))
    pred_labels, pred_sizes = label_components(pred, _whole(pred))
    is_lesion = pred_sizes * voxel_ml > min_ml
    is_lesion[0] = False
    predicted = is_lesion[pred_labels]
    detected = np.zeros(len(ref_sizes), bool)
    detected[ref_labels[predicted]] = True
    overlapping = np.unique(pred_labels[predicted & ref])
    lesions = [{"volume_ml": float(n * voxel_ml), "diameter_mm": round(equivalent_diameter_mm(n * voxel_ml), 2),
                "detected": bool(detected[i])} for i, n in enumerate(ref_sizes) if i > 0]
    return {"lesions": sorted(lesions, key=lambda lesion: -lesion["volume_ml"]),
            "pred_lesions": int(is_lesion.sum()),
            "false_positive_lesions": int(is_lesion.sum() - len(overlapping)),
            "pred_largest_component_ml": float(pred_sizes[1:].max()) * voxel_ml if len(pred_sizes) > 1 else 0.0}


def presence_score(probabilities: np.ndarray, region: np.ndarray | None) -> float:
    """Largest probability inside ``region`` (None: the whole array); 0 where the region is empty."""
    values = probabilities if region is None else probabilities[region]
    return float(values.max()) if values.size else 0.0


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


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
    sensitivity, specificity = _rate(tp, tp + fn), _rate(tn, tn + fp)
    if sensitivity is None or specificity is None:
        harmonic = None
    else:
        total = sensitivity + specificity
        harmonic = 2 * sensitivity * specificity / total if total else 0.0
    return {"cases": int(ref.size), "tp": tp, "fn": fn, "tn": tn, "fp": fp,
            "sensitivity": sensitivity, "specificity": specificity, "harmonic_mean": harmonic}


def _recall(lesions: list[dict]) -> dict:
    found = sum(lesion["detected"] for lesion in lesions)
    return {"lesions": len(lesions), "detected": found, "recall": _rate(found, len(lesions))}


def lesion_scores(cases: Iterable[Mapping]) -> dict:
    """Lesion-level detection over the cases of one class (each a ``match_lesions`` result).

    Returns ``lesions``, ``detected``, ``recall`` (None without reference lesions), the same for
    lesions of at least ``LARGE_LESION_MM`` (``LARGE_LESIONS``) and per ``SIZE_BINS``
    (``by_diameter_mm``), ``false_positives`` and ``false_positives_per_case``.
    """
    cases = list(cases)
    lesions = [lesion for case in cases for lesion in case["lesions"]]
    false_positives = sum(case["false_positive_lesions"] for case in cases)
    return {**_recall(lesions),
            LARGE_LESIONS: _recall([x for x in lesions if x["diameter_mm"] >= LARGE_LESION_MM]),
            "by_diameter_mm": {b: _recall([x for x in lesions if size_bin(x["diameter_mm"]) == b]) for b in SIZE_BINS},
            "false_positives": false_positives, "false_positives_per_case": _rate(false_positives, len(cases))}


def roc(ref_positive: Sequence[bool], scores: Sequence[float]) -> dict:
    """ROC curve over cases: ``fpr`` and ``tpr`` at each distinct score taken as the threshold
    (positive when the score is at least it), from (0, 0) to (1, 1), and ``auc`` (the probability
    that a positive case scores above a negative one, ties counting half). All None without both
    positive and negative cases."""
    from sklearn.metrics import roc_auc_score, roc_curve

    ref = np.asarray(ref_positive, dtype=bool)
    if ref.all() or not ref.any():
        return {"auc": None, "fpr": None, "tpr": None}
    fpr, tpr, _ = roc_curve(ref, np.asarray(scores, float), drop_intermediate=False)
    return {"auc": float(roc_auc_score(ref, scores)), "fpr": fpr.tolist(), "tpr": tpr.tolist()}
