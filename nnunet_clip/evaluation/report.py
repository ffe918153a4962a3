"""Writing the result of ``evaluate_folders``: metrics.json, a CSV per case and class, and a box
plot PNG of DSC per class, each written atomically (temporary name, then ``os.replace``)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable

from nnunet_clip.atomic import atomic_path, remove_leftovers

CSV_COLUMNS = ("case", "class", "dsc", "nsd", "tolerance_mm", "ref_voxels", "pred_voxels",
               "ref_positive", "pred_positive", "pred_largest_component_ml")


def output_paths(json_path: str | Path) -> tuple[Path, Path, Path]:
    """metrics.json -> (metrics.json, metrics.csv, metrics_dsc_boxplot.png) in the same folder."""
    json_path = Path(json_path)
    stem = json_path.name[:-5] if json_path.name.endswith(".json") else json_path.name
    return json_path, json_path.with_name(f"{stem}.csv"), json_path.with_name(f"{stem}_dsc_boxplot.png")


def _atomic_write(path: Path, write: Callable[[io.IOBase], None], binary: bool = False) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
        write(f)


def write_json(metrics: dict, path: Path) -> None:
    """metrics.json (undefined values are null)."""
    _atomic_write(path, lambda f: json.dump(metrics, f, indent=1, allow_nan=False))


def write_csv(metrics: dict, path: Path) -> None:
    """One row per case and scored class; empty cells for undefined or non-tumour values."""
    def write(f):
        writer = csv.DictWriter(f, CSV_COLUMNS, restval="")
        writer.writeheader()
        for case, classes in metrics["cases"].items():
            for name, scores in classes.items():
                writer.writerow({"case": case, "class": name,
                                 **{k: "" if v is None else v for k, v in scores.items()}})
    _atomic_write(path, write)


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


def write_outputs(metrics: dict, json_path: str | Path) -> list[Path]:
    """Write metrics.json, its CSV and its box plot (see ``output_paths``), removing what a killed
    earlier run left of them; returns the paths."""
    paths = output_paths(json_path)
    remove_leftovers(*paths)
    for writer, path in zip((write_json, write_csv, write_dsc_boxplot), paths):
        writer(metrics, path)
    return list(paths)
