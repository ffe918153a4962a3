"""Evaluating a folder of predictions against a folder of references: pairing cases, partial
labels, aggregation.

``evaluate_folders(ref_dir, pred_dir, dataset_json)`` returns the structure written to
metrics.json:

- ``cases``: case -> class -> per-case scores (see ``case_metrics.evaluate_case``); only the
  classes the case's reference annotates (dataset.json ``annotated_classes``) and the prediction
  names are present. A non-annotated class is absent, never scored as a miss.
- ``per_class``: class -> {"dsc": {mean, median, count}, "nsd": {...}, "cases", "both_empty"};
  ``count`` is the number of cases with a defined value (cases where both masks are empty are
  undefined and left out).
- ``mean_organ_dsc``, ``mean_organ_nsd``: mean over the non-tumour classes of their mean.
- ``tumor_detection``: tumour class -> detection: case level (``detection.detection_scores``),
  ``lesion_level`` (``detection.lesion_scores``) and ``roc`` over the cases' presence scores
  (``presence_score``: ``probability`` where every case has predicted probabilities, else
  ``largest component ml``).
- ``settings``, ``classes_not_in_prediction``, ``predictions_without_reference``.

Prediction label values are named by ``PRED_DIR/labels.json`` when present (a ``labels`` dict, or
an object holding one under ``"labels"``), else by dataset.json ``labels``, like the reference.
"""
from __future__ import annotations

import json
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from tqdm import tqdm

from nnunet_clip.errors import InputError
from nnunet_clip.evaluation.case_metrics import CaseTask, class_values, evaluate_case
from nnunet_clip.evaluation.detection import (DEFAULT_MIN_TUMOR_ML, LESION_SIZE_BINS_MM, detection_scores,
                                               lesion_scores, roc)
from nnunet_clip.evaluation.probabilities import find_probabilities
from nnunet_clip.evaluation.tolerances import tolerance_mm
from nnunet_clip.taxonomy import canonical_name, is_lesion

PREDICTION_LABELS = "labels.json"


def load_json_file(path: Path) -> dict:
    """A JSON object from ``path``; InputError naming the file if it is missing or not an object."""
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot be read as JSON ({e})") from e
    if not isinstance(content, dict):
        raise InputError(f"{path}: expected a JSON object")
    return content


def label_files(folder: Path, file_ending: str) -> dict[str, Path]:
    """Case identifier -> label file, for the ``*<file_ending>`` files of ``folder``."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    return {p.name[:-len(file_ending)]: p for p in sorted(folder.iterdir())
            if p.name.endswith(file_ending) and p.is_file()}


def prediction_labels(pred_dir: Path, dataset: dict) -> tuple[dict, str]:
    """The ``labels`` naming the prediction's values and where they come from."""
    path = pred_dir / PREDICTION_LABELS
    if not path.is_file():
        return dataset["labels"], "dataset.json"
    content = load_json_file(path)
    labels = content["labels"] if isinstance(content.get("labels"), dict) else content
    return labels, str(path)


def _annotated(dataset: dict, source: str, cases: Iterable[str], known: set[str]) -> dict[str, set[str]] | None:
    """Case -> its annotated classes, or None when dataset.json has no ``annotated_classes``."""
    table = dataset.get("annotated_classes")
    if table is None:
        return None
    out = {}
    for case in cases:
        if case not in table:
            raise InputError(f"{source}: case '{case}' is missing from 'annotated_classes'")
        names = {canonical_name(n) for n in table[case]}
        if names - known:
            raise InputError(f"{source}: case '{case}' annotates {sorted(names - known)}, "
                             "which are not classes of its 'labels'")
        out[case] = names
    return out


def _stats(values: list[float | None]) -> dict:
    defined = [v for v in values if v is not None]
    if not defined:
        return {"mean": None, "median": None, "count": 0}
    return {"mean": float(np.mean(defined)), "median": float(np.median(defined)), "count": len(defined)}


def tumour_detection(scored: list[dict]) -> dict:
    """Case-level, lesion-level and ROC detection of one tumour class over its scored cases."""
    ref_positive = [s["ref_positive"] for s in scored]
    from_probabilities = all(s["presence_score"] is not None for s in scored)
    scores = [s["presence_score"] if from_probabilities else s["pred_largest_component_ml"] for s in scored]
    return {**detection_scores(ref_positive, [s["pred_positive"] for s in scored]),
            "lesion_level": lesion_scores(scored),
            "roc": {"presence_score": "probability" if from_probabilities else "largest component ml",
                    **roc(ref_positive, scores)}}


def summarize(cases: Mapping[str, Mapping[str, dict]], classes: Iterable[str]) -> dict:
    """``per_class``, ``mean_organ_dsc``, ``mean_organ_nsd`` and ``tumor_detection`` of per-case scores."""
    per_class, detection = {}, {}
    for name in classes:
        scored = [c[name] for c in cases.values() if name in c]
        per_class[name] = {"dsc": _stats([s["dsc"] for s in scored]), "nsd": _stats([s["nsd"] for s in scored]),
                           "cases": len(scored), "both_empty": sum(s["dsc"] is None for s in scored)}
        if is_lesion(name):
            detection[name] = tumour_detection(scored)
    organ_means = {m: [s[m]["mean"] for n, s in per_class.items() if not is_lesion(n) and s[m]["mean"] is not None]
                   for m in ("dsc", "nsd")}
    return {"per_class": per_class,
            **{f"mean_organ_{m}": float(np.mean(v)) if v else None for m, v in organ_means.items()},
            "tumor_detection": detection}


def _evaluate_all(tasks: list[CaseTask], num_processes: int, progress: bool) -> list[dict]:
    bar = {"total": len(tasks), "desc": "evaluate", "unit": "case", "disable": not progress}
    if num_processes <= 1:
        with tqdm(tasks, **bar) as cases:  # closed before an error is reported
            return [evaluate_case(t) for t in cases]
    with ProcessPoolExecutor(num_processes) as pool, tqdm(pool.map(evaluate_case, tasks), **bar) as results:
        return list(results)


def evaluate_folders(ref_dir: str | Path, pred_dir: str | Path, dataset_json: dict | str | Path,
                     tolerances: Mapping[str, float] | None = None, min_tumor_ml: float = DEFAULT_MIN_TUMOR_ML,
                     missing_as_empty: bool = False, num_processes: int = 1, progress: bool = True,
                     cases: Iterable[str] | None = None) -> dict:
    """Score every reference case of ``ref_dir`` against its prediction in ``pred_dir``.

    ``dataset_json``: the dataset.json content or its path (``labels``, optional
    ``annotated_classes`` and ``file_ending``); without ``annotated_classes`` every case counts as
    annotating every class. ``tolerances``: class -> NSD tolerance in mm over the defaults.
    A reference case without prediction is an InputError, or with ``missing_as_empty`` scored
    as an empty prediction; a prediction without reference is ignored with a warning.
    ``cases``: score only these reference cases (default: all of ``ref_dir``).
    """
    ref_dir, pred_dir = Path(ref_dir), Path(pred_dir)
    source = str(dataset_json) if isinstance(dataset_json, (str, Path)) else "dataset.json"
    dataset = load_json_file(Path(dataset_json)) if isinstance(dataset_json, (str, Path)) else dataset_json
    if not isinstance(dataset.get("labels"), dict):
        raise InputError(f"{source}: no 'labels' dict")
    file_ending = dataset.get("file_ending", ".nii.gz")
    ref_values = class_values(dataset["labels"])
    pred_labels, pred_labels_source = prediction_labels(pred_dir, dataset)
    pred_values = class_values(pred_labels)
    classes = [c for c in ref_values if c in pred_values]
    tolerance = {c: tolerance_mm(c, tolerances) for c in classes}

    refs, preds = label_files(ref_dir, file_ending), label_files(pred_dir, file_ending)
    unmatched = sorted(set(preds) - set(refs))
    if cases is not None:
        refs = {case: refs[case] for case in cases if case in refs}
    if not refs:
        raise InputError(f"{ref_dir}: no *{file_ending} label files")
    missing = [c for c in refs if c not in preds]
    if missing and not missing_as_empty:
        raise InputError(f"{pred_dir / (missing[0] + file_ending)}: missing prediction for reference case "
                         f"'{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unmatched:
        warnings.warn(f"{pred_dir}: {len(unmatched)} prediction(s) without reference ignored: "
                      f"{', '.join(unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}", stacklevel=2)
    annotated = _annotated(dataset, source, refs, set(ref_values))
    if annotated is None:
        warnings.warn(f"{source}: no 'annotated_classes'; every case is taken to annotate every class",
                      stacklevel=2)

    tasks = [CaseTask(case, path, preds.get(case),
                      tuple(c for c in classes if annotated is None or c in annotated[case]),
                      ref_values, pred_values, tolerance, min_tumor_ml, find_probabilities(pred_dir, case))
             for case, path in refs.items()]
    cases = {t.case: r for t, r in zip(tasks, _evaluate_all(tasks, num_processes, progress))}
    return {"reference_dir": str(ref_dir), "prediction_dir": str(pred_dir),
            "settings": {"tolerance_mm": tolerance, "min_tumor_ml": min_tumor_ml,
                         "tumor_positive_if": "largest 26-connected predicted component > min_tumor_ml",
                         "predicted_lesion": "26-connected predicted component > min_tumor_ml",
                         "lesion_detected_if": "a predicted lesion shares a voxel with it",
                         "lesion_size": "diameter of the ball of the lesion's volume (mm)",
                         "lesion_size_bins_mm": list(LESION_SIZE_BINS_MM),
                         "presence_score": "largest predicted probability inside the predicted host organs "
                                           "and tumour; without probabilities: largest component ml",
                         "prediction_labels": pred_labels_source, "missing_as_empty": missing_as_empty,
                         "missing_predictions": missing},
            **summarize(cases, classes),
            "cases": cases,
            "classes_not_in_prediction": [c for c in ref_values if c not in pred_values],
            "predictions_without_reference": unmatched}
