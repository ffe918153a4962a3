"""A universal checkpoint as the start of the next model, on the demo's synthetic sources (docs/benchmarks.md,
"Transfer and extension").

Per phantom seed (``OUT/phantoms_<p>``, shared with phantom_benchmark.py) and training seed:

- **pretraining**: nnUNetTrainerCLIP on the universal dataset without WORD, the one source that annotates
  the rectum and the femoral heads (dataset 520), for the phantom benchmark's budget;
- **joint**: the phantom benchmark's universal model (all 12 sources, dataset 500), the same budget;
- **extension**: ``nnUNetTrainerCLIP_Extend`` (or ``--extension-trainer``) from the pretraining checkpoint on all
  12 sources (dataset 521, the pretraining's plans), for ``--extension-share`` of the budget;
- **transfer**: a downstream set of ``--downstream-cases`` new WORD phantoms (dataset 522, the
  pretraining's plans: 16 classes, three never seen in pretraining), nnUNetTrainerCLIP for each of
  ``--transfer-iterations``, fine-tuned from the pretraining checkpoint and from scratch.

Every model predicts the held-out scans (``nnunet-clip predict``) and is scored on its dataset's classes.
Reported: old classes' mean organ DSC before and after extension, the new classes against the joint
model, and transfer DSC against iterations (``transfer.png``). Runs are kept as in phantom_benchmark.py.

    python benchmarks/transfer_benchmark.py --out benchmark_output --training-seeds 0 1 2 --phantom-seeds 0
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import phantom_benchmark as pb

PRETRAINING, EXTENSION, DOWNSTREAM = 520, 521, 522
HELD_BACK = "word"
"""The source left out of pretraining: the only one annotating rectum and femoral heads."""
DOWNSTREAM_SEED = 20_000
"""Downstream phantoms are numbered from here (+ the phantom seed), apart from training and held-out ones."""
EXTEND = "nnUNetTrainerCLIP_Extend"
JOINT = "nnUNetTrainerCLIP"
"""The phantom benchmark's universal model: trained on every source, the reference for new classes."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmark_output"))
    p.add_argument("--training-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--phantom-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=144, help="of pretraining and the joint model")
    p.add_argument("--iterations", type=int, default=22, help="per epoch")
    p.add_argument("--extension-share", type=float, default=0.25, help="of the joint model's epochs")
    p.add_argument("--extension-trainer", default=EXTEND, help="the extension's trainer (default: %(default)s)")
    p.add_argument("--downstream-cases", type=int, default=5)
    p.add_argument("--transfer-iterations", type=int, nargs="+", default=[100, 300, 1000],
                   help="budgets of the transfer runs, each a run of its own (epochs of 10 iterations)")
    p.add_argument("--heldout", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true",
                   help="one case per source, the demo's --quick network (with e.g. --epochs 2 --iterations 2 "
                        "--transfer-iterations 10: runs every step)")
    p.add_argument("--run", nargs=4, metavar=("MODEL", "SOURCE", "PHANTOM_SEED", "TRAINING_SEED"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.out, args.jobs, args.cohort = args.out.resolve(), 1, "demo"  # as phantom_benchmark's helpers read them
    return args


def run_options(args: argparse.Namespace) -> list[str]:
    return [*pb.run_options(args), "--extension-share", str(args.extension_share),
            "--extension-trainer", args.extension_trainer,
            "--downstream-cases", str(args.downstream_cases),
            "--transfer-iterations", *map(str, args.transfer_iterations)]


def prepare(phantoms: Path, seed: int, args: argparse.Namespace) -> None:
    """The phantom benchmark's sources, held-out scans and universal dataset, and datasets 520-522."""
    from nnunet_clip.synthetic.sources import SyntheticSource, write_sources

    pb.prepare(phantoms, seed, {"universal"}, args)
    inputs = {s.name: phantoms / "sources" / s.name for s in pb.sources(args)}
    pb.prepare_dataset(phantoms, PRETRAINING, "Phantoms_pretraining",
                       {s: f for s, f in inputs.items() if s != HELD_BACK}, args)
    pb.prepare_dataset(phantoms, EXTENSION, "Phantoms_extension", inputs, args, plans_from=PRETRAINING)
    downstream = phantoms / "downstream"
    if not (phantoms / f"prepared_{DOWNSTREAM}").is_file():
        write_sources(downstream, [SyntheticSource(HELD_BACK, args.downstream_cases, "LPS")],
                      seed=DOWNSTREAM_SEED + seed)
    pb.prepare_dataset(phantoms, DOWNSTREAM, "Phantoms_downstream", {HELD_BACK: downstream / HELD_BACK}, args,
                       plans_from=PRETRAINING)


def transfer_model(init: str, iterations: int) -> str:
    return f"{init}-{iterations}"


def extension_model(args: argparse.Namespace) -> str:
    return "extension" if args.extension_trainer == EXTEND else f"extension_{args.extension_trainer}"


def runs_of(args: argparse.Namespace) -> list[tuple[str, str, int, int]]:
    """Pretraining first: extension and fine-tuning start from its checkpoint."""
    models = ["pretraining", extension_model(args)] + [transfer_model(init, n) for n in args.transfer_iterations
                                             for init in ("fine-tuned", "scratch")]
    return [(m, "-", p, t) for m in models for p in args.phantom_seeds for t in args.training_seeds]


def run_one(args: argparse.Namespace) -> None:
    """Train (from the pretraining checkpoint where the model says so), predict and score one run."""
    name, phantom_seed, training_seed = args.run[0], int(args.run[2]), int(args.run[3])
    folder = pb.run_folder(args.out, name, "-", phantom_seed, training_seed)
    pb.enter_run(args, folder, phantom_seed, training_seed)
    from nnunet_clip.demo import pipeline
    from nnunet_clip.evaluation.report import write_json

    pretrained = next((pb.run_folder(args.out, "pretraining", "-", phantom_seed, training_seed) / "nnUNet_results")
                      .glob(f"Dataset{PRETRAINING}_*/*/fold_{pipeline.FOLD}/checkpoint_final.pth"), None)
    if name != "pretraining" and name.split("-")[0] != "scratch" and pretrained is None:
        raise RuntimeError(f"{name}: the pretraining run of phantom seed {phantom_seed}, training seed "
                           f"{training_seed} has no checkpoint_final.pth")
    if name == "pretraining":
        dataset, trainer, budget, start_from = PRETRAINING, "nnUNetTrainerCLIP", pb.budget(args), None
    elif name == extension_model(args):
        dataset, trainer, start_from = EXTENSION, args.extension_trainer, pretrained
        budget = pb.budget(args, args.extension_share)
    else:
        init, iterations = name.rsplit("-", 1)
        dataset, trainer = DOWNSTREAM, "nnUNetTrainerCLIP"
        start_from = pretrained if init == "fine-tuned" else None
        budget = replace(pb.budget(args), epochs=max(1, int(iterations) // 10), iterations_per_epoch=10)
    start = time.perf_counter()
    trained = pipeline.train(dataset, trainer, budget, "cpu", pretrained_weights=start_from)
    write_json({"model": name, "phantom_seed": phantom_seed, "training_seed": training_seed,
                "iterations": budget.epochs * budget.iterations_per_epoch,
                "train_seconds": round(time.perf_counter() - start, 1),
                **pb.predict_and_score(trained, args.out / f"phantoms_{phantom_seed}" / "heldout", folder)},
               folder / "result.json")


def mean_dsc(dsc: dict[str, float | None], classes: set[str]) -> float:
    """Mean DSC of ``classes`` (those scored)."""
    return statistics.mean(v for c, v in dsc.items() if c in classes and v is not None)


def summarise(args: argparse.Namespace) -> dict:
    """Extension: old classes' mean organ DSC before and after, each new class against the joint model, per run
    and mean ± sd. Transfer: per budget, mean DSC of the downstream classes and of those never seen in
    pretraining, fine-tuned and from scratch."""
    from nnunet_clip.taxonomy import TUMORS

    def result(model, p, t):
        path = pb.run_folder(args.out, model, "-", p, t) / "result.json"
        return json.loads(path.read_text()) if path.is_file() else None

    extension, transfer = [], {}
    for p in args.phantom_seeds:
        phantoms = args.out / f"phantoms_{p}"
        pretrained, downstream = annotated(phantoms, PRETRAINING), annotated(phantoms, DOWNSTREAM)
        old, new = pretrained - set(TUMORS), annotated(phantoms, EXTENSION) - pretrained
        never_seen = downstream - pretrained
        for t in args.training_seeds:
            before, joint = result("pretraining", p, t), result(JOINT, p, t)
            after = result(extension_model(args), p, t)
            if before and after:
                row = {"phantom_seed": p, "training_seed": t, "old_before": mean_dsc(before["dsc"], old),
                       "old_after": mean_dsc(after["dsc"], old), "iterations": after["iterations"],
                       "new": {c: after["dsc"][c] for c in sorted(new)}}
                row["old_drop"] = row["old_before"] - row["old_after"]
                if joint:
                    row["joint_new"] = {c: joint["dsc"][c] for c in sorted(new)}
                    reference = mean_dsc(joint["dsc"], new)
                    row["new_share_of_joint"] = mean_dsc(after["dsc"], new) / reference if reference else None
                    row["joint_iterations"] = joint["iterations"]
                extension.append(row)
            for n in args.transfer_iterations:
                for init in ("fine-tuned", "scratch"):
                    r = result(transfer_model(init, n), p, t)
                    if r:
                        scores = transfer.setdefault(init, {}).setdefault(n, {"all": [], "never seen": []})
                        scores["all"].append(mean_dsc(r["dsc"], downstream))
                        scores["never seen"].append(mean_dsc(r["dsc"], never_seen))
    return {"extension": extension,
            "extension_mean": {k: pb.mean_sd([r[k] for r in extension if r.get(k) is not None])
                               for k in ("old_before", "old_after", "old_drop", "new_share_of_joint")},
            "transfer": {init: {n: {k: pb.mean_sd(v) for k, v in s.items()} for n, s in sorted(by_n.items())}
                         for init, by_n in transfer.items()}}


def annotated(phantoms: Path, dataset_id: int) -> set[str]:
    raw = next((phantoms / "nnUNet_raw").glob(f"Dataset{dataset_id}_*"))
    return set().union(*json.loads((raw / "dataset.json").read_text())["annotated_classes"].values())


def markdown(summary: dict) -> str:
    f = pb._fmt
    lines = ["| phantom seed | training seed | old classes before | after extension | drop | "
             "new classes (extended / joint) | new: share of joint | iterations (extension / joint) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["extension"]:
        new = ", ".join(f"{c} {v:.2f} / {r.get('joint_new', {}).get(c, float('nan')):.2f}" for c, v in r["new"].items())
        lines.append(f"| {r['phantom_seed']} | {r['training_seed']} | {r['old_before']:.3f} | {r['old_after']:.3f} | "
                     f"{r['old_drop']:+.3f} | {new} | {r.get('new_share_of_joint') or float('nan'):.2f} | "
                     f"{r['iterations']} / {r.get('joint_iterations', '–')} |")
    m = summary["extension_mean"]
    lines.append(f"| mean ± sd | | {f(m['old_before'])} | {f(m['old_after'])} | {f(m['old_drop'])} | | "
                 f"{f(m['new_share_of_joint'], 2)} | |")
    lines += ["", "| iterations | fine-tuned: all classes | from scratch: all classes | fine-tuned: never seen | "
              "from scratch: never seen |", "|---|---|---|---|---|"]
    tuned, scratch = summary["transfer"].get("fine-tuned", {}), summary["transfer"].get("scratch", {})
    for n in sorted(set(tuned) | set(scratch)):
        cells = [f(s.get(n, {}).get(k)) for k in ("all", "never seen") for s in (tuned, scratch)]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def transfer_png(summary: dict, path: Path) -> None:
    """Mean DSC (± sd) of the downstream classes against iterations, fine-tuned and from scratch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, key, title in zip(axes, ("all", "never seen"), ("all downstream classes", "classes never seen")):
        for init, by_n in summary["transfer"].items():
            n = sorted(by_n)
            mean = [by_n[i][key]["mean"] for i in n]
            sd = [by_n[i][key]["sd"] for i in n]
            ax.errorbar(n, mean, yerr=sd, marker="o", capsize=3, label=init)
        ax.set(xscale="log", xlabel="training iterations", title=title)
    axes[0].set_ylabel("mean DSC, held-out scans")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.run:
        run_one(args)
        return
    for seed in args.phantom_seeds:
        prepare(args.out / f"phantoms_{seed}", seed, args)
    pb.launch(args, pb.runs_of(JOINT, args))
    pb.launch(args, runs_of(args), script=__file__, options=run_options(args))
    summary = summarise(args)
    if summary["transfer"]:
        transfer_png(summary, args.out / "transfer.png")
    pb.save_summary(args.out / extension_model(args).replace("extension", "transfer"), summary, markdown(summary))


if __name__ == "__main__":
    main()
