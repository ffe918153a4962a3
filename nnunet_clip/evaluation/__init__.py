"""Evaluation of label-map predictions against partially labelled references.

Public API (import from the submodules; this package imports nothing heavy itself):

- ``metrics.dice(ref, pred)`` and ``metrics.normalized_surface_dice(ref, pred, spacing, tolerance_mm)``:
  DSC and NSD of two binary masks (NaN when both are empty, 0 when only one is).
- ``detection``: tumour detection. ``detection_scores(ref_positive, pred_positive)``: case level (the
  paper's Table 4); ``match_lesions(ref, pred, spacing, min_ml)`` and ``lesion_scores(cases)``:
  lesion level; ``presence_score(probabilities, region)`` and ``roc(ref_positive, scores)``: ROC
  over cases; ``largest_component_ml(mask, spacing)``.
- ``probabilities``: the predicted probabilities beside a prediction (ours or nnU-Net's npz).
- ``tolerances.DEFAULT_TOLERANCE_MM`` and ``tolerances.tolerance_mm(name, overrides)``.
- ``evaluate_folder.evaluate_folders(ref_dir, pred_dir, dataset_json, ...) -> dict``: the
  structure written to metrics.json.
- ``report.write_outputs(metrics, json_path) -> list[Path]``: metrics.json, the CSVs per case and
  class, per tumour class and per lesion, the DSC box plot and the ROC PNG next to it;
  ``report.detection_rows(metrics)``: the per-tumour rows.

``nnunet-clip evaluate`` (``command.py``) is a thin wrapper around the last two.
"""
