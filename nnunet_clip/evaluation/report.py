"""Writing the result of ``evaluate_folders``, each file atomically (temporary name, then ``os.replace``):
metrics.json; CSVs per case and class, per tumour class (detection) and per reference lesion; a box
plot PNG of DSC per class and a PNG of the tumours' ROC curves."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable

from nnunet_clip.atomic import atomic_path, remove_leftovers
from nnunet_clip.evaluation.detection import LARGE_LESIONS, SIZE_BINS, size_bin

CSV_COLUMNS = ("case", "class", "dsc", "nsd", "tolerance_mm", "ref_voxels", "pred_voxels",
               "ref_positive", "pred_positive", "pred_largest_component_ml", "ref_lesions", "detected_lesions",
               "pred_lesions", "false_positive_lesions", "presence_score")
DETECTION_COLUMNS = ("class", "cases", "tp", "fn", "tn", "fp", "sensitivity", "specificity", "harmonic_mean",
                     "auc", "presence_score", "lesions", "detected_lesions", "lesion_recall",
                     f"lesion_recall_{LARGE_LESIONS}",
                     *(f"lesion_recall_{b}mm" for b in SIZE_BINS), "false_positive_lesions",
                     "false_positive_lesions_per_case")
LESION_COLUMNS = ("case", "class", "lesion", "volume_ml", "diameter_mm", "size_bin_mm", "detected")
SUFFIXES = (".json", ".csv", "_detection.csv", "_lesions.csv", "_dsc_boxplot.png", "_roc.png")


def output_paths(json_path: str | Path) -> tuple[Path, ...]:
    """metrics.json -> metrics.json, metrics.csv, metrics_detection.csv, metrics_lesions.csv,
    metrics_dsc_boxplot.png and metrics_roc.png in the same folder."""
    json_path = Path(json_path)
    stem = json_path.name[:-5] if json_path.name.endswith(".json") else json_path.name
    return (json_path, *(json_path.with_name(f"{stem}{suffix}") for suffix in SUFFIXES[1:]))


def _atomic_write(path: Path, write: Callable[[io.IOBase], None], binary: bool = False) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
        write(f)


def write_json(metrics: dict, path: Path) -> None:
    """metrics.json (undefined values are null)."""
    _atomic_write(path, lambda f: json.dump(metrics, f, indent=1, allow_nan=False))


def _write_rows(path: Path, columns: tuple[str, ...], rows) -> None:
    """A CSV of ``columns``; None becomes an empty cell."""
    def write(f):
        writer = csv.DictWriter(f, columns, restval="", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    _atomic_write(path, write)


def write_csv(metrics: dict, path: Path) -> None:
    """One row per case and scored class; empty cells for undefined or non-tumour values."""
    _write_rows(path, CSV_COLUMNS, ({"case": case, "class": name, **scores}
                                    for case, classes in metrics["cases"].items() for name, scores in classes.items()))


def detection_rows(metrics: dict) -> list[dict]:
    """One row per tumour class: case level, lesion level and AUC (``DETECTION_COLUMNS``)."""
    rows = []
    for name, d in metrics["tumor_detection"].items():
        lesions = d["lesion_level"]
        rows.append({"class": name, **{k: d[k] for k in ("cases", "tp", "fn", "tn", "fp", "sensitivity",
                                                           "specificity", "harmonic_mean")},
                     "auc": d["roc"]["auc"], "presence_score": d["roc"]["presence_score"],
                     "lesions": lesions["lesions"], "detected_lesions": lesions["detected"],
                     "lesion_recall": lesions["recall"],
                     f"lesion_recall_{LARGE_LESIONS}": lesions[LARGE_LESIONS]["recall"],
                     **{f"lesion_recall_{b}mm": lesions["by_diameter_mm"][b]["recall"] for b in SIZE_BINS},
                     "false_positive_lesions": lesions["false_positives"],
                     "false_positive_lesions_per_case": lesions["false_positives_per_case"]})
    return rows


def write_detection_csv(metrics: dict, path: Path) -> None:
    """One row per tumour class (``detection_rows``)."""
    _write_rows(path, DETECTION_COLUMNS, detection_rows(metrics))


def write_lesions_csv(metrics: dict, path: Path) -> None:
    """One row per reference lesion: its case, class, number (largest first), volume, diameter, size bin, detected."""
    _write_rows(path, LESION_COLUMNS, ({"case": case, "class": name, "lesion": i + 1, **lesion,
                                        "size_bin_mm": size_bin(lesion["diameter_mm"])}
                                       for case, classes in metrics["cases"].items()
                                       for name, scores in classes.items()
                                       for i, lesion in enumerate(scores.get("lesions", ()))))


def write_dsc_boxplot(metrics: dict, path: Path) -> None:
    """Horizontal box plot of the per-case DSC of each class with at least one defined value."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, renders with Agg

    data = {name: [c[name]["dsc"] for c in metrics["cases"].values() if c.get(name, {}).get("dsc") is not None]
            for name in metrics["per_class"]}
    data = {name: values for name, values in data.items() if values}
    fig = Figure(figsize=(8, 1.5 + 0.3 * max(len(data), 1)), layout="constrained")
    ax = fig.subplots()
    if data:
        ax.boxplot(list(data.values())[::-1], orientation="horizontal", tick_labels=list(data)[::-1])
    else:
        ax.text(0.5, 0.5, "no defined DSC values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_xlabel("DSC per case")
    ax.set_title(f"DSC per class (cases: {len(metrics['cases'])})")
    _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100), binary=True)


def write_roc(metrics: dict, path: Path) -> None:
    """ROC curves over cases of the tumour classes with positive and negative cases, AUC in the legend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    curves = {name: d["roc"] for name, d in metrics["tumor_detection"].items() if d["roc"]["auc"] is not None}
    for name, curve in curves.items():
        ax.plot(curve["fpr"], curve["tpr"], marker=".",
                label=f"{name} (AUC {curve['auc']:.3f}, {curve['presence_score']})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    if curves:
        ax.legend(loc="lower right", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no tumour class with positive and negative cases", ha="center", va="center",
                transform=ax.transAxes)
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="1 - specificity (cases)", ylabel="sensitivity (cases)",
           title=f"Tumour presence, ROC over cases (cases: {len(metrics['cases'])})")
    _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100), binary=True)


WRITERS = (write_json, write_csv, write_detection_csv, write_lesions_csv, write_dsc_boxplot, write_roc)


def write_outputs(metrics: dict, json_path: str | Path) -> list[Path]:
    """Write metrics.json, its CSVs and its PNGs (see ``output_paths``), removing what a killed
    earlier run left of them; returns the paths."""
    paths = output_paths(json_path)
    remove_leftovers(*paths)
    for writer, path in zip(WRITERS, paths):
        writer(metrics, path)
    return list(paths)
