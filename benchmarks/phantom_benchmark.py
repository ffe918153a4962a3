"""The paper's claims at small scale, on the demo's synthetic sources (docs/benchmarks.md).

Trains on the same sources and the same budget: the Universal Model (nnUNetTrainerCLIP), its
unmasked ablation, its one-hot ablation, and one stock nnU-Net per source, each on that source's
cases alone (nnUNetTrainerNoMirroring with nnU-Net's SGD at its learning rate of 1e-2: the classes
have sides, which mirroring would swap, as the Universal Model's trainers do not mirror either). Then, on the fully labelled held-out scans: DSC per class (a
source's model is scored on the classes its source annotates) and the wall time to segment them
with the one Universal Model against all the dataset-specific models.

    python benchmarks/phantom_benchmark.py --out benchmark_output [--epochs E --iterations I]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

UNIVERSAL = ("nnUNetTrainerCLIP", "nnUNetTrainerCLIPUnmasked", "nnUNetTrainerOneHot")
STOCK = "nnUNetTrainerNoMirroring"
STOCK_LEARNING_RATE = 1e-2
"""nnU-Net's own (SGD); the demo budget's learning rate is for the Universal Model's AdamW."""
UNIVERSAL_ID = 500


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmark_output"))
    p.add_argument("--epochs", type=int, help="epochs per model (default: the demo budget's)")
    p.add_argument("--iterations", type=int, help="iterations per epoch (default: the demo budget's)")
    p.add_argument("--heldout", type=int, default=4)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quick", action="store_true", help="the demo's --quick budget and one case per source")
    return p.parse_args()


def timed(f, *args):
    t = time.perf_counter()
    result = f(*args)
    return result, time.perf_counter() - t


def main() -> None:
    args = parse_args()
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[name] = str(out / name)
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    os.environ.setdefault("nnUNet_n_proc_DA", "0")

    from dataset_conversion.convert import convert
    from nnunet_clip.cli import main as cli_main
    from nnunet_clip.demo import pipeline
    from nnunet_clip.evaluation.evaluate_folder import evaluate_folders
    from nnunet_clip.synthetic.sources import DEMO_SOURCES, write_heldout, write_sources
    from nnunet_clip.taxonomy import CLASS_NAMES

    budget = pipeline.QUICK if args.quick else pipeline.Budget()
    budget = replace(budget, epochs=args.epochs or budget.epochs,
                     iterations_per_epoch=args.iterations or budget.iterations_per_epoch)
    sources = tuple(replace(s, cases=1) for s in DEMO_SOURCES) if args.quick else DEMO_SOURCES
    inputs = write_sources(out / "sources", sources)
    heldout = out / "heldout"
    write_heldout(heldout, 1 if args.quick else args.heldout)

    datasets = {"universal": UNIVERSAL_ID}
    for i, (source, folder) in enumerate(inputs.items()):
        convert(source, folder, UNIVERSAL_ID, "Phantoms")
        datasets[source] = UNIVERSAL_ID + 1 + i
        convert(source, folder, datasets[source], f"Phantoms_{source.replace('-', '_')}")
    cli_main(["embed", "-d", str(UNIVERSAL_ID), "--pretrained", "none"])
    for dataset_id in datasets.values():
        pipeline.plan_and_preprocess(dataset_id, budget)

    runs = [(trainer, UNIVERSAL_ID, None) for trainer in UNIVERSAL]
    runs += [(STOCK, dataset_id, source) for source, dataset_id in datasets.items() if source != "universal"]
    results = {}
    for trainer, dataset_id, source in runs:
        name = f"{trainer}:{source}" if source else trainer
        model, train_s = timed(pipeline.train, dataset_id, trainer,
                               replace(budget, learning_rate=STOCK_LEARNING_RATE) if source else budget, args.device)
        prediction = out / "predictions" / name.replace(":", "_")
        _, predict_s = timed(pipeline.predict, model, heldout / "imagesTs", prediction, args.device)
        metrics = evaluate_folders(heldout / "labelsTs", prediction, heldout / "dataset.json", progress=False)
        annotated = set(sources_annotated(out, source)) if source else set(CLASS_NAMES)
        results[name] = {"train_seconds": round(train_s, 1), "predict_seconds": round(predict_s, 1),
                         "dsc": {c: m["dsc"]["mean"] for c, m in metrics["per_class"].items() if c in annotated}}
    summary = summarise(results, budget.as_dict(), len(list((heldout / "labelsTs").iterdir())))
    (out / "benchmark.json").write_text(json.dumps(summary, indent=1))
    print(markdown(summary))


def sources_annotated(out: Path, source: str) -> list[str]:
    """The classes ``source`` annotates, from its own converted dataset.json."""
    dataset = next((out / "nnUNet_raw").glob(f"Dataset*_Phantoms_{source.replace('-', '_')}/dataset.json"))
    return sorted({c for classes in json.loads(dataset.read_text())["annotated_classes"].values() for c in classes})


def summarise(results: dict, budget: dict, heldout: int) -> dict:
    """Per class: each universal variant's DSC and the mean DSC of the source models annotating it;
    inference time of the Universal Model against the sum over the source models."""
    from nnunet_clip.taxonomy import CLASS_NAMES

    stock = {k: v for k, v in results.items() if k.startswith(STOCK + ":")}
    per_class = {}
    for c in CLASS_NAMES:
        row = {t: results[t]["dsc"].get(c) for t in UNIVERSAL}
        scores = [v["dsc"][c] for v in stock.values() if v["dsc"].get(c) is not None]
        row["dataset-specific"] = sum(scores) / len(scores) if scores else None
        per_class[c] = row
    return {
        "budget": budget, "heldout_scans": heldout, "models": results, "per_class_dsc": per_class,
        "inference_seconds": {"universal": results[UNIVERSAL[0]]["predict_seconds"],
                              "dataset_specific_total": round(sum(v["predict_seconds"] for v in stock.values()), 1),
                              "dataset_specific_models": len(stock)},
    }


def markdown(summary: dict) -> str:
    columns = [*UNIVERSAL, "dataset-specific"]
    lines = ["| class | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for c, row in summary["per_class_dsc"].items():
        lines.append(f"| {c} | " + " | ".join("–" if row[k] is None else f"{row[k]:.3f}" for k in columns) + " |")
    t = summary["inference_seconds"]
    lines.append(f"\nInference on {summary['heldout_scans']} held-out scans: Universal Model {t['universal']} s, "
                 f"{t['dataset_specific_models']} dataset-specific models {t['dataset_specific_total']} s.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
