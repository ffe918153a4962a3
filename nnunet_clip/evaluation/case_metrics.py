"""Scoring one case: read the reference and predicted label maps, and for every class to score its
DSC, NSD, voxel counts and (tumour classes) detection: per case, per lesion, presence score.

A class's mask is the region of its label values (``np.isin(label_map, values)``). Each class is
scored inside the bounding box of its values in both maps (found for all values in one pass with
``scipy.ndimage.find_objects``), so full-size CTs with many classes stay fast and small.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import find_objects

from nnunet_clip.errors import InputError
from nnunet_clip import nifti
from nnunet_clip.orientation import orientation_code
from nnunet_clip.evaluation.detection import match_lesions, presence_score
from nnunet_clip.evaluation.metrics import dice, normalized_surface_dice
from nnunet_clip.evaluation.probabilities import read_probabilities
from nnunet_clip.taxonomy import PARENTS, canonical_name, is_lesion, region_class_names

Box = tuple[slice, ...]


def class_values(labels: dict) -> dict[str, tuple[int, ...]]:
    """Class name (universal where known) -> its label values, from a dataset.json-style ``labels``."""
    return {canonical_name(name): tuple(int(v) for v in (labels[name] if isinstance(labels[name], list) else [labels[name]]))
            for name in region_class_names(labels)}


@dataclass(frozen=True)
class LabelMap:
    """A label map in LPS orientation, so that maps stored in different orientations compare voxel by voxel."""

    array: np.ndarray
    """(z, y, x), integer."""
    spacing: tuple[float, ...]
    """mm, in the array's axis order."""
    origin: tuple[float, ...]
    stored: str
    """The orientation the file stores it in (``orientation.orientation_code``)."""


def read_label_map(path: Path) -> LabelMap:
    """The label map of ``path`` in LPS; InputError naming a bad file."""
    problem = nifti.problem(path)
    if problem:
        raise InputError(f"{path}: {problem}")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise InputError(f"{path}: cannot be read as an image ({str(e).strip().splitlines()[-1]})") from e
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel, "
                         "expected a label map")
    stored = orientation_code(image.GetDirection())
    image = sitk.DICOMOrient(image, "LPS")
    array = sitk.GetArrayFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{path}: holds non-integer values, expected a label map")
        array = array.astype(np.int32)
    if array.size and array.min() < 0:
        raise InputError(f"{path}: holds negative values, expected a label map")
    return LabelMap(array, tuple(float(s) for s in reversed(image.GetSpacing())), image.GetOrigin(), stored)


@dataclass(frozen=True)
class CaseTask:
    """What ``evaluate_case`` needs for one case (picklable, for worker processes)."""

    case: str
    ref_path: Path
    pred_path: Path | None  # None: scored as an empty prediction
    classes: tuple[str, ...]
    ref_values: dict[str, tuple[int, ...]]
    pred_values: dict[str, tuple[int, ...]]
    tolerance_mm: dict[str, float]
    min_tumor_ml: float
    probabilities: Path | None = None
    """The case's predicted probabilities (``probabilities.find_probabilities``), if any."""


def _value_boxes(array: np.ndarray, values: dict[str, tuple[int, ...]]) -> dict[int, Box]:
    """Label value -> bounding box of its voxels, for the values present in ``array``."""
    max_value = max((v for vs in values.values() for v in vs), default=0)
    found = find_objects(array, max_label=max_value) if max_value > 0 else []
    return {value: box for value, box in enumerate(found, start=1) if box is not None}


def _union(boxes: list[Box], ndim: int) -> Box:
    """Smallest box holding all ``boxes``; an empty box if there are none."""
    if not boxes:
        return (slice(0, 0),) * ndim
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(ndim))


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _presence_region(name: str, pred: np.ndarray, pred_values: dict[str, tuple[int, ...]],
                     pred_boxes: dict[int, Box]) -> tuple[Box, np.ndarray | None]:
    """Where a tumour's presence score is read: its predicted hosts and its predicted mask (a box
    and the mask inside it); the whole map (mask None) when the prediction names none of its hosts."""
    hosts = [h for h in PARENTS.get(name, ()) if h in pred_values]
    if not hosts:
        return tuple(slice(0, n) for n in pred.shape), None
    values = sorted({v for c in (name, *hosts) for v in pred_values[c]})
    box = _union([pred_boxes[v] for v in values if v in pred_boxes], pred.ndim)
    return box, np.isin(pred[box], values)


def _tumour_scores(name: str, ref_mask: np.ndarray, pred_mask: np.ndarray, spacing, task: CaseTask,
                   probability: np.ndarray | None, presence_where: tuple[Box, np.ndarray | None]) -> dict:
    """Detection of one tumour class: case level, lesion level, presence score (None without probabilities)."""
    lesions = match_lesions(ref_mask, pred_mask, spacing, task.min_tumor_ml)
    box, region = presence_where
    return {"ref_positive": bool(ref_mask.any()), "pred_positive": lesions["pred_lesions"] > 0,
            "pred_largest_component_ml": lesions["pred_largest_component_ml"],
            "ref_lesions": len(lesions["lesions"]),
            "detected_lesions": sum(lesion["detected"] for lesion in lesions["lesions"]),
            "pred_lesions": lesions["pred_lesions"], "false_positive_lesions": lesions["false_positive_lesions"],
            "presence_score": None if probability is None else presence_score(probability[box], region),
            "lesions": lesions["lesions"]}


def evaluate_case(task: CaseTask) -> dict[str, dict]:
    """Class -> {dsc, nsd, tolerance_mm, ref_voxels, pred_voxels} for the classes of ``task``;
    tumour classes add their detection (``_tumour_scores``). Undefined values (both masks empty)
    are None."""
    reference = read_label_map(task.ref_path)
    ref, spacing = reference.array, reference.spacing
    predicted = None if task.pred_path is None else read_label_map(task.pred_path)
    if predicted is None:
        pred = np.zeros_like(ref)
    else:
        pred = predicted.array
        if (pred.shape != ref.shape or not np.allclose(predicted.spacing, spacing, rtol=0, atol=1e-4)
                or not np.allclose(predicted.origin, reference.origin, rtol=0, atol=1e-2 * min(spacing))):
            raise InputError(f"{task.pred_path}: its grid (shape {pred.shape}, spacing {predicted.spacing}, origin "
                             f"{np.round(predicted.origin, 3).tolist()}) differs from the reference "
                             f"{task.ref_path.name}'s ({ref.shape}, {spacing}, {np.round(reference.origin, 3).tolist()})")
    ref_boxes, pred_boxes = _value_boxes(ref, task.ref_values), _value_boxes(pred, task.pred_values)
    tumours = [name for name in task.classes if is_lesion(name)]
    probabilities = {} if task.probabilities is None or not tumours or predicted is None else read_probabilities(
        task.probabilities, tumours, list(task.pred_values), ref.shape, predicted.stored)
    result = {}
    for name in task.classes:
        box = _union([ref_boxes[v] for v in task.ref_values[name] if v in ref_boxes]
                     + [pred_boxes[v] for v in task.pred_values[name] if v in pred_boxes], ref.ndim)
        ref_mask = np.isin(ref[box], task.ref_values[name])
        pred_mask = np.isin(pred[box], task.pred_values[name])
        tolerance = task.tolerance_mm[name]
        scores = {"dsc": _json_float(dice(ref_mask, pred_mask)),
                  "nsd": _json_float(normalized_surface_dice(ref_mask, pred_mask, spacing, tolerance)),
                  "tolerance_mm": tolerance,
                  "ref_voxels": int(np.count_nonzero(ref_mask)),
                  "pred_voxels": int(np.count_nonzero(pred_mask))}
        if is_lesion(name):
            scores.update(_tumour_scores(name, ref_mask, pred_mask, spacing, task, probabilities.get(name),
                                         _presence_region(name, pred, task.pred_values, pred_boxes)))
        result[name] = scores
    return result
