"""Evaluation of label-map predictions against partially labelled references.

Public API (import from the submodules; this package imports nothing heavy itself):

- ``metrics.dice(ref, pred)`` and ``metrics.normalized_surface_dice(ref, pred, spacing, tolerance_mm)``:
  DSC and NSD of two binary masks (NaN when both are empty, 0 when only one is).
- ``detection.largest_component_ml(mask, spacing)`` and ``detection.detection_scores(ref_positive,
  pred_positive)``: patient-level tumour detection (the paper's Table 4).
- ``tolerances.DEFAULT_TOLERANCE_MM`` and ``tolerances.tolerance_mm(name, overrides)``.
- ``evaluate_folder.evaluate_folders(ref_dir, pred_dir, dataset_json, ...) -> dict``: the
  structure written to metrics.json.
- ``report.write_outputs(metrics, json_path) -> list[Path]``: metrics.json, metrics.csv and the
  DSC box plot PNG next to it.

``nnunet-clip evaluate`` (``command.py``) is a thin wrapper around the last two.
"""
