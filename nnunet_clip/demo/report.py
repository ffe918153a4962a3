"""The demo's report: ``report.json`` (everything measured) and ``report.md`` (the same, readable)."""
from __future__ import annotations

import json
from pathlib import Path

from nnunet_clip.evaluation.detection import DEFAULT_MIN_TUMOR_ML, LARGE_LESIONS
from nnunet_clip.taxonomy import CLASS_NAMES, TUMORS

TARGET_DSC = 0.75
"""Mean organ DSC on the held-out scans that the demo must reach."""
TARGET_MINUTES = 10.0
"""Wall time the default demo must stay within on a 2-core CPU (setup not counted)."""


def model_summary(metrics: dict) -> dict:
    """What the report keeps of ``evaluate_folders``' metrics for one model."""
    per_class = {name: {"dsc": m["dsc"]["mean"], "nsd": m["nsd"]["mean"], "cases": m["dsc"]["count"]}
                 for name, m in metrics["per_class"].items()}
    return {"mean_organ_dsc": metrics["mean_organ_dsc"], "mean_organ_nsd": metrics["mean_organ_nsd"],
            "per_class": per_class, "tumor_detection": metrics["tumor_detection"]}


def _count(found: int, total: int) -> str:
    return f"{found}/{total}" if total else "–"


def detection_table(summary: dict) -> list[str]:
    """Markdown rows of one model's tumour detection (``model_summary``): case level, AUC, lesion level."""
    lines = ["| tumour | scans with / without | sensitivity | specificity | harmonic mean | AUC | lesions found | "
             "lesions ≥ 10 mm found | false-positive lesions per scan |", "|" + "---|" * 9]
    for name in TUMORS:
        d = summary["tumor_detection"].get(name)
        if d is None:
            lines.append(f"| {name} | not predicted |" + " |" * 7)
            continue
        lesions = d["lesion_level"]
        lines.append(f"| {name} | {d['tp'] + d['fn']} / {d['tn'] + d['fp']} | {_fmt(d['sensitivity'])} | "
                     f"{_fmt(d['specificity'])} | {_fmt(d['harmonic_mean'])} | {_fmt(d['roc']['auc'])} | "
                     f"{_count(lesions['detected'], lesions['lesions'])} | "
                     f"{_count(lesions[LARGE_LESIONS]['detected'], lesions[LARGE_LESIONS]['lesions'])} | "
                     f"{_fmt(lesions['false_positives_per_case'])} |")
    return lines


def annotated_counts(dataset_json: dict) -> dict[str, int]:
    """Class -> number of training cases that annotate it."""
    counts = dict.fromkeys(CLASS_NAMES, 0)
    for classes in dataset_json["annotated_classes"].values():
        for name in classes:
            counts[name] += 1
    return counts


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _setting(value) -> str:
    """A budget value as a person writes it: sequences joined, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_setting, value))
    return str(value)


def _met(met: bool) -> str:
    return "met" if met else "**not met**"


def _class_table(report: dict) -> list[str]:
    models = list(report["models"])
    total = report["training_cases"]
    head = "| class | annotated in | " + " | ".join(f"DSC {m} | NSD {m}" for m in models) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(models))]
    for name in CLASS_NAMES:
        cells = []
        for m in models:
            scores = report["models"][m]["per_class"].get(name, {})
            cells += [_fmt(scores.get("dsc")), _fmt(scores.get("nsd"))]
        kind = " (tumour)" if name in TUMORS else ""
        lines.append(f"| {name}{kind} | {report['annotated_in_training'][name]}/{total} | " + " | ".join(cells) + " |")
    return lines


def encoder_line(encoder: dict) -> str:
    """The report's sentence on the text encoder; random weights are said to give codes, not language."""
    return (f"Text encoder: {encoder['model']} with **{encoder['pretrained']}** weights, template "
            f"\"{encoder['template']}\"."
            + (" Random weights (no CLIP download here): the embeddings are fixed random codes, not language."
               if encoder["pretrained"] == "none" else ""))


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out``."""
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=1))
    lines = [
        "# nnunet-clip demo",
        "",
        f"Synthetic multi-source abdomen: {report['training_cases']} training cases from "
        f"{len(report['sources'])} sources in their own layouts, {report['heldout_cases']} fully labelled "
        f"held-out scans. Device: {report['device']}; the budget is below.",
        "",
        encoder_line(report["text_encoder"]),
        "",
        "## Result",
        "",
    ]
    for model, summary in report["models"].items():
        lines.append(f"- {model}: mean organ DSC **{_fmt(summary['mean_organ_dsc'])}**, "
                     f"mean organ NSD {_fmt(summary['mean_organ_nsd'])} "
                     f"({summary['iterations']} training iterations in {len(summary['iterations_per_epoch'])} epochs)")
    lines += [
        f"- Universal-model path wall time: **{report['demo_seconds'] / 60:.1f} min** "
        f"(target ≤ {TARGET_MINUTES:.0f} min); whole run {report['total_seconds'] / 60:.1f} min.",
        f"- Targets: mean organ DSC ≥ {TARGET_DSC:.2f} {_met(report['targets_met']['mean_organ_dsc'])}; "
        f"universal-model path ≤ {TARGET_MINUTES:.0f} min {_met(report['targets_met']['wall_time'])}.",
        "",
        "## Budget",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {name.replace('_', ' ')} | {_setting(value)} |" for name, value in report["budget"].items()),
        "",
        "## Wall time per step (s)",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {step} | {seconds:.1f} |" for step, seconds in report["step_seconds"].items()),
        "",
        "## Per class on the held-out scans",
        "",
        "\"annotated in\": training cases whose source labels the class (the others contain it unlabelled).",
        "",
        *_class_table(report),
        "",
        f"Preview: `{report['preview']}` (predicted classes on the first held-out scan), "
        f"`{report['reference_preview']}` (its reference).",
        "",
        "## Tumour detection on the held-out scans",
        "",
        "A scan counts as positive for a tumour type when its prediction has a component of it larger than "
        f"{DEFAULT_MIN_TUMOR_ML:g} ml; a reference lesion is found when a predicted one overlaps it; AUC over "
        "scans of the largest predicted probability inside the host organ (docs/evaluation.md). \"–\": "
        "undefined (no scans or lesions to compute it from).",
        "",
    ]
    for model, summary in report["models"].items():
        lines += [f"### {model}", "", *detection_table(summary), ""]
    md_path.write_text("\n".join(lines))
    return json_path, md_path
