"""Scoring one case: read the reference and predicted label maps, and for every class to score its
DSC, NSD, voxel counts and (tumour classes) patient-level detection.

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
from nnunet_clip.evaluation.detection import largest_component_ml
from nnunet_clip.evaluation.metrics import dice, normalized_surface_dice
from nnunet_clip.taxonomy import canonical_name, is_lesion, region_class_names

Box = tuple[slice, ...]


def class_values(labels: dict) -> dict[str, tuple[int, ...]]:
    """Class name (universal where known) -> its label values, from a dataset.json-style ``labels``."""
    return {canonical_name(name): tuple(int(v) for v in (labels[name] if isinstance(labels[name], list) else [labels[name]]))
            for name in region_class_names(labels)}


def read_label_map(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Label array (z, y, x) and spacing in mm in the same axis order; InputError naming a bad file."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise InputError(f"{path}: cannot be read as an image ({str(e).strip().splitlines()[-1]})") from e
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel, "
                         "expected a label map")
    array = sitk.GetArrayFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{path}: holds non-integer values, expected a label map")
        array = array.astype(np.int32)
    if array.size and array.min() < 0:
        raise InputError(f"{path}: holds negative values, expected a label map")
    return array, tuple(float(s) for s in reversed(image.GetSpacing()))


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


def evaluate_case(task: CaseTask) -> dict[str, dict]:
    """Class -> {dsc, nsd, tolerance_mm, ref_voxels, pred_voxels} for the classes of ``task``;
    tumour classes add ref_positive, pred_positive and pred_largest_component_ml. Undefined
    values (both masks empty) are None."""
    ref, spacing = read_label_map(task.ref_path)
    if task.pred_path is None:
        pred = np.zeros_like(ref)
    else:
        pred, pred_spacing = read_label_map(task.pred_path)
        if pred.shape != ref.shape or not np.allclose(pred_spacing, spacing, rtol=0, atol=1e-4):
            raise InputError(f"{task.pred_path}: shape {pred.shape} and spacing {pred_spacing} differ from the "
                             f"reference {task.ref_path.name} ({ref.shape}, {spacing})")
    ref_boxes, pred_boxes = _value_boxes(ref, task.ref_values), _value_boxes(pred, task.pred_values)
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
            largest = largest_component_ml(pred_mask, spacing)
            scores.update(ref_positive=scores["ref_voxels"] > 0, pred_positive=largest > task.min_tumor_ml,
                          pred_largest_component_ml=largest)
        result[name] = scores
    return result
