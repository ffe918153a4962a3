"""The paper's claims at small scale, on the demo's synthetic sources (docs/benchmarks.md).

Trains on the same sources and the same budget: the Universal Model (nnUNetTrainerCLIP), its
unmasked ablation, its one-hot ablation, and one dataset-specific model per source, each on that
source's cases alone. By default a source's model is the Universal Model's recipe without text
(nnUNetTrainerOneHot: AdamW, Dice + BCE per class, no mirroring); it learns only the classes its
source annotates. ``--source-trainer nnUNetTrainerNoMirroring`` trains stock nnU-Net instead (SGD
at its learning rate of 1e-2, no mirroring: the classes have sides), which learns nothing at the
demo's budget (docs/benchmarks.md).
Then, on the fully labelled held-out scans: DSC per class (a source's model is scored on the
classes its source annotates) and the wall time to segment them with the one Universal Model
against all the dataset-specific models.

    python benchmarks/phantom_benchmark.py --out benchmark_output [--epochs E --iterations I]
                                           [--source-trainer nnUNetTrainerOneHot|nnUNetTrainerNoMirroring]
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

UNIVERSAL = ("nnUNetTrainerCLIP", "nnUNetTrainerCLIPUnmasked", "nnUNetTrainerOneHot")
SOURCE_TRAINERS = {"nnUNetTrainerOneHot": None, "nnUNetTrainerNoMirroring": 1e-2}
"""Trainers for the dataset-specific models and their learning rate (None: the demo budget's, for
AdamW; 1e-2 is nnU-Net's own, for its SGD)."""
UNIVERSAL_ID = 500


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmark_output"))
    p.add_argument("--epochs", type=int, help="epochs per model (default: the demo budget's)")
    p.add_argument("--iterations", type=int, help="iterations per epoch (default: the demo budget's)")
    p.add_argument("--heldout", type=int, default=4)
    p.add_argument("--source-trainer", default="nnUNetTrainerOneHot", choices=list(SOURCE_TRAINERS),
                   help="trainer of the dataset-specific models")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quick", action="store_true", help="the demo's --quick budget and one case per source")
    p.add_argument("--resume", action="store_true",
                   help="keep --out: reuse its prepared datasets, trained models and per-model results")
    p.add_argument("--trained-only", action="store_true",
                   help="implies --resume; train nothing, summarise the models an interrupted run finished")
    return p.parse_args()


def timed(f, *args):
    t = time.perf_counter()
    result = f(*args)
    return result, time.perf_counter() - t


def main() -> None:
    args = parse_args()
    out = args.out.resolve()
    if not (args.resume or args.trained_only):
        shutil.rmtree(out, ignore_errors=True)
    from nnunet_clip.demo import pipeline

    pipeline.use_output_folders(out)
    from nnunet_clip.taxonomy import CLASS_NAMES

    budget = pipeline.QUICK if args.quick else pipeline.Budget()
    budget = replace(budget, epochs=args.epochs or budget.epochs,
                     iterations_per_epoch=args.iterations or budget.iterations_per_epoch, minutes=None)
    datasets, budget = prepare_datasets(out, budget, args)
    heldout = out / "heldout"
    runs = [(trainer, UNIVERSAL_ID, None) for trainer in UNIVERSAL]
    runs += [(args.source_trainer, dataset_id, source) for source, dataset_id in datasets.items()
             if source != "universal"]
    source_lr = SOURCE_TRAINERS[args.source_trainer] or budget.learning_rate
    results = {}
    for trainer, dataset_id, source in runs:
        name = f"{trainer}:{source}" if source else trainer
        annotated = set(sources_annotated(out, source)) if source else set(CLASS_NAMES)
        result = run_model(out, name, trainer, dataset_id, annotated,
                           replace(budget, learning_rate=source_lr) if source else budget, args.device,
                           train=not args.trained_only)
        if result is not None:
            results[name] = result
    summary = summarise(results, budget.as_dict(), len(list((heldout / "labelsTs").iterdir())),
                        args.source_trainer)
    (out / "benchmark.json").write_text(json.dumps(summary, indent=1))
    print(markdown(summary))


def prepare_datasets(out: Path, budget, args) -> tuple[dict[str, int], object]:
    """Sources, held-out scans, the universal and the per-source datasets, planned and preprocessed;
    returns source name → dataset id, and the budget. With ``--resume`` both are kept from the
    earlier run, whose plans and models were made with its budget."""
    from dataset_conversion.convert import convert
    from nnunet_clip.cli import main as cli_main
    from nnunet_clip.demo import pipeline
    from nnunet_clip.synthetic.sources import DEMO_SOURCES, write_heldout, write_sources

    sources = tuple(replace(s, cases=1) for s in DEMO_SOURCES) if args.quick else DEMO_SOURCES
    datasets = {"universal": UNIVERSAL_ID, **{s.name: UNIVERSAL_ID + 1 + i for i, s in enumerate(sources)}}
    prepared = out / "prepared.json"
    if prepared.is_file():
        return resumed(prepared, args)
    inputs = write_sources(out / "sources", sources)
    write_heldout(out / "heldout", 1 if args.quick else args.heldout)
    for source, folder in inputs.items():
        convert(source, folder, UNIVERSAL_ID, "Phantoms")
        convert(source, folder, datasets[source], f"Phantoms_{source.replace('-', '_')}")
    cli_main(["embed", "-d", str(UNIVERSAL_ID), "--pretrained", "none"])
    for dataset_id in datasets.values():
        pipeline.plan_and_preprocess(dataset_id, budget)
    prepared.write_text(json.dumps({"datasets": datasets, "budget": budget.as_dict()}))
    return datasets, budget


def resumed(prepared: Path, args) -> tuple[dict[str, int], object]:
    """The datasets and budget of an earlier run; an explicit --epochs/--iterations must agree."""
    from nnunet_clip.demo.pipeline import Budget

    stored = json.loads(prepared.read_text())
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in stored["budget"].items()}
    kept = Budget(**{"minutes": None, **fields})  # runs before ``minutes`` trained fixed iterations too
    for option, field in (("--epochs", "epochs"), ("--iterations", "iterations_per_epoch")):
        given = getattr(args, option[2:])
        if given and given != getattr(kept, field):
            raise SystemExit(f"{prepared}: this run was prepared with {field} {getattr(kept, field)}, "
                             f"not {option} {given}; resume it without {option} or start a new --out")
    return stored["datasets"], kept


def run_model(out: Path, name: str, trainer: str, dataset_id: int, annotated: set[str], budget, device: str,
              train: bool = True) -> dict | None:
    """Train (unless an earlier run left the final checkpoint), predict and score one model; its
    result is kept in ``results/`` and reused by ``--resume``. None: untrained and ``train`` False."""
    from nnunet_clip.demo import pipeline
    from nnunet_clip.evaluation.evaluate_folder import evaluate_folders
    from nnunet_clip.evaluation.report import write_json

    result_file = out / "results" / f"{name.replace(':', '_')}.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    model = pipeline.trained_model_folder(dataset_id, trainer)
    train_s = None
    if not (model / f"fold_{pipeline.FOLD}" / "checkpoint_final.pth").is_file():
        if not train:
            return None
        model, train_s = timed(pipeline.train, dataset_id, trainer, budget, device)
    heldout = out / "heldout"
    prediction = out / "predictions" / name.replace(":", "_")
    _, predict_s = timed(pipeline.predict, model, heldout / "imagesTs", prediction, device)
    metrics = evaluate_folders(heldout / "labelsTs", prediction, heldout / "dataset.json", progress=False)
    result = {"train_seconds": None if train_s is None else round(train_s, 1), "predict_seconds": round(predict_s, 1),
              "dsc": {c: m["dsc"]["mean"] for c, m in metrics["per_class"].items() if c in annotated},
              "tumor_detection": {c: d for c, d in metrics["tumor_detection"].items() if c in annotated}}
    write_json(result, result_file)
    return result


def sources_annotated(out: Path, source: str) -> list[str]:
    """The classes ``source`` annotates, from its own converted dataset.json."""
    dataset = next((out / "nnUNet_raw").glob(f"Dataset*_Phantoms_{source.replace('-', '_')}/dataset.json"))
    return sorted({c for classes in json.loads(dataset.read_text())["annotated_classes"].values() for c in classes})


def summarise(results: dict, budget: dict, heldout: int, source_trainer: str) -> dict:
    """Per class: each universal variant's DSC and the mean DSC of the source models annotating it;
    inference time of the Universal Model against the sum over the source models."""
    from nnunet_clip.taxonomy import CLASS_NAMES, TUMORS

    source_models = {k: v for k, v in results.items() if k.startswith(source_trainer + ":")}
    per_class = {}
    for c in CLASS_NAMES:
        row = {t: results[t]["dsc"].get(c) for t in UNIVERSAL}
        scores = [v["dsc"][c] for v in source_models.values() if v["dsc"].get(c) is not None]
        row["dataset-specific"] = sum(scores) / len(scores) if scores else None
        per_class[c] = row
    organs = [c for c in CLASS_NAMES if c not in TUMORS]
    covered = [c for c in organs if per_class[c]["dataset-specific"] is not None]
    return {
        "budget": budget, "source_trainer": source_trainer, "heldout_scans": heldout, "models": results,
        "per_class_dsc": per_class,
        "mean_organ_dsc": _column_means(per_class, organs),
        "mean_dsc_organs_dataset_specific_models_cover": _column_means(per_class, covered),
        "inference_seconds": {"universal": results[UNIVERSAL[0]]["predict_seconds"],
                              "dataset_specific_total": round(sum(v["predict_seconds"]
                                                                  for v in source_models.values()), 1),
                              "dataset_specific_models": len(source_models)},
    }


def _column_means(per_class: dict, classes: list[str]) -> dict:
    """Per column, the mean DSC over ``classes`` where it is defined."""
    means = {}
    for column in next(iter(per_class.values())):
        scores = [per_class[c][column] for c in classes if per_class[c][column] is not None]
        means[column] = sum(scores) / len(scores) if scores else None
    return means


def markdown(summary: dict) -> str:
    columns = [*UNIVERSAL, "dataset-specific"]
    lines = ["| class | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for c, row in summary["per_class_dsc"].items():
        lines.append(f"| {c} | " + " | ".join("–" if row[k] is None else f"{row[k]:.3f}" for k in columns) + " |")
    for label, key in (("mean organ DSC", "mean_organ_dsc"),
                       ("mean over the organs the dataset-specific models cover", "mean_dsc_organs_dataset_specific_models_cover")):
        lines.append(f"| **{label}** | " + " | ".join(
            "–" if summary[key][k] is None else f"**{summary[key][k]:.3f}**" for k in columns) + " |")
    t = summary["inference_seconds"]
    lines.append(f"\nInference on {summary['heldout_scans']} held-out scans: Universal Model {t['universal']} s, "
                 f"{t['dataset_specific_models']} dataset-specific models {t['dataset_specific_total']} s.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
