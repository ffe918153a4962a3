"""The GPU figures of nnunet-clip against stock nnU-Net, in one short run: heads, prediction, training.

One 32-class region dataset of realistic size (five cases of 120×384×384 voxels at 2.5×0.8×0.8
mm, a box of every class; half the cases annotate 14 classes) is planned by nnU-Net with its
default 3d_fullres plans (on this dataset: patch 56×192×160, batch 2, 6 stages of 32–320
features) and serves all three measures:

(a) heads: ``head_overhead.py``'s comparison on these plans: one fixed batch, ``train_step``
    time (median of 10 after 2 warm-up steps) and peak ``torch.cuda.max_memory_allocated`` of
    ``nnUNetTrainerCLIP`` against ``nnUNetTrainer`` (regions), each in its own process.
(b) prediction: an untrained ``nnUNetTrainerCLIP`` fold 0 on these plans (prediction cost does
    not depend on training) predicts a synthetic CT of 300×512×512 voxels at the plans' spacing,
    all 32 classes, with ``nnunet-clip predict`` and with ``nnUNetv2_predict_from_modelfolder``
    (each with its defaults, fold 0; the model allows no mirroring, so neither mirrors): wall
    time of the whole command, peak GPU memory of its allocator (``max_memory_reserved``; the
    CUDA context adds a few hundred MB) and peak host memory (summed PSS of the command and its
    workers, ``predict_memory.measure``).
(c) training throughput: iterations/s of each trainer's training loop (nnU-Net's data loading
    and augmentation included, ``nnUNet_n_proc_DA`` workers), 40 after 10 of warm-up, each
    trainer in its own process.

Neither network is compiled unless ``--compile`` (nnU-Net's trainer compiles by default on a
GPU, nnunet-clip's only when ``nnUNet_compile`` asks): the comparison is of the same kind of
network. It writes the JSON (``--out``) after each measure, so a run cut short keeps what it
measured, and prints a markdown table. ``--only`` runs some of the measures. ``--quick`` runs
the same path at tiny sizes (on a CPU in about five minutes) to check the script, not to measure.

    python benchmarks/gpu_suite.py --out benchmarks/results/gpu_suite.json     # an NVIDIA GPU, several minutes
    python benchmarks/gpu_suite.py --quick --device cpu --out /tmp/gpu_suite_quick.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import head_overhead
import predict_memory

GPU_PEAKS = "GPU_SUITE_PEAKS"
"""Environment variable: the file a command run by ``--entry-point`` writes its GPU memory peaks to."""


@dataclass(frozen=True)
class Sizes:
    dataset: tuple[int, int, int]
    """Each training case, z y x."""
    spacing: tuple[float, float, float]
    """z y x, mm: of the dataset and of the CT to predict."""
    ct: tuple[int, int, int]
    """The CT to predict, z y x."""
    steps: int
    """(a) timed steps per process."""
    warmup: int
    """(c) iterations before timing."""
    iterations: int
    """(c) timed iterations."""


FULL = Sizes(dataset=(120, 384, 384), spacing=(2.5, 0.8, 0.8), ct=(300, 512, 512), steps=10, warmup=10,
             iterations=40)
QUICK = Sizes(dataset=(24, 40, 40), spacing=(2.5, 0.8, 0.8), ct=(30, 64, 64), steps=1, warmup=1, iterations=2)


def training_throughput(trainer_name: str, device: str, warmup: int, iterations: int) -> dict:
    """Run in a fresh process: iterations/s of the trainer's training loop, data loading included."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    from nnunet_clip.plugin import with_plugin_trainers

    torch.manual_seed(0)
    trainer = with_plugin_trainers(get_trainer_from_args, str(head_overhead.DATASET_ID), "3d_fullres", 0,
                                   trainer_name, device=torch.device(device))
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    for _ in range(warmup):
        trainer.train_step(next(trainer.dataloader_train))  # returns the loss on the CPU: waits for the GPU
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.train_step(next(trainer.dataloader_train))
    seconds = time.perf_counter() - start
    for loader in (trainer.dataloader_train, trainer.dataloader_val):
        getattr(loader, "_finish", lambda: None)()  # stop the augmentation workers
    return {"trainer": trainer_name, "iterations": iterations, "seconds": seconds,
            "iterations_per_s": iterations / seconds}


def run_entry_point(name: str, argv: list[str]) -> None:
    """Run an installed console command in this process; write its peak GPU memory to ``$GPU_SUITE_PEAKS``."""
    from importlib.metadata import entry_points

    import torch

    (entry,) = entry_points(group="console_scripts", name=name)
    sys.argv = [name, *argv]
    try:
        status = entry.load()()
    finally:
        cuda = torch.cuda.is_available()
        peaks = {"reserved_gb": torch.cuda.max_memory_reserved() / 1e9 if cuda else None,
                 "allocated_gb": torch.cuda.max_memory_allocated() / 1e9 if cuda else None}
        Path(os.environ[GPU_PEAKS]).write_text(json.dumps(peaks))
    sys.exit(status or 0)


def in_process(*args: str) -> list[str]:
    """The command line that runs this script's worker ``args`` in a fresh process."""
    return [sys.executable, __file__, *args]


def compare_training(device: str, sizes: Sizes) -> dict:
    runs = {}
    for name in head_overhead.TRAINERS:
        out = subprocess.run(in_process("--throughput-worker", name, "--device", device, "--warmup", str(sizes.warmup),
                                        "--iterations", str(sizes.iterations)),
                             check=True, stdout=subprocess.PIPE, text=True, encoding="utf-8")
        runs[name] = json.loads(out.stdout.strip().splitlines()[-1])
    stock, clip = (runs[name]["iterations_per_s"] for name in head_overhead.TRAINERS)
    return {"runs": runs, "throughput_ratio": clip / stock}


def compare_prediction(work: Path, device: str, sizes: Sizes) -> dict:
    model = predict_memory.save_untrained_model(work / "pre" / f"Dataset{head_overhead.DATASET_ID}_HeadOverhead")
    inputs = work / "ct"
    predict_memory.write_input(inputs, sizes.ct, sizes.spacing)
    commands = {
        "nnUNetv2_predict": ["nnUNetv2_predict_from_modelfolder", "-m", str(model), "-i", str(inputs), "-o",
                             str(work / "out_nnunetv2"), "-f", "0", "-device", device],
        "nnunet_clip_predict": ["nnunet-clip", "predict", "-m", str(model), "-i", str(inputs), "-o",
                                str(work / "out_nnunet_clip"), "-f", "0", "--device", device],
    }
    results = {}
    for tool, command in commands.items():
        peaks = work / f"{tool}_gpu_peaks.json"
        os.environ[GPU_PEAKS] = str(peaks)
        print(f"  {tool} ...", file=sys.stderr, flush=True)
        results[tool] = {**predict_memory.measure(in_process("--entry-point", *command)),
                         "gpu_memory": json.loads(peaks.read_text())}
    return {"model": model.name, "ct_zyx": list(sizes.ct), "spacing_zyx_mm": list(sizes.spacing), **results,
            "time_ratio": results["nnunet_clip_predict"]["seconds"] / results["nnUNetv2_predict"]["seconds"]}


def environment(device: str) -> dict:
    import torch

    return {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
            "cuda": torch.version.cuda, "cpu_count": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M")}


def _ratio(value: float | None, target: str = "") -> str:
    return "" if value is None else f"{value:.2f}×" + (f" (target {target})" if target else "")


def _gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown(results: dict) -> str:
    """The table of docs/performance.md, section "On a GPU", of the measures in ``results``."""
    env = results["environment"]
    rows = []
    if "heads" in results:
        heads = results["heads"]
        stock, clip = (min(heads["runs"][n], key=lambda r: r["step_s"]) for n in head_overhead.TRAINERS)
        memory = "GPU memory, allocated" if env["device"] != "cpu" else "memory, RSS growth"
        rows += [("(a) training step, one fixed batch (s)", f"{stock['step_s']:.3f}", f"{clip['step_s']:.3f}",
                  _ratio(heads["time_ratio"], "≤ 1.10×")),
                 (f"(a) training step, peak {memory} (MB)", f"{stock['peak_memory_mb']:.0f}",
                  f"{clip['peak_memory_mb']:.0f}", _ratio(heads["memory_ratio"], "≤ 1.15×"))]
    if "training" in results:
        rate = {n: results["training"]["runs"][n]["iterations_per_s"] for n in head_overhead.TRAINERS}
        rows.append(("(c) training iterations/s, data loading included", f"{rate['nnUNetTrainer']:.2f}",
                     f"{rate['nnUNetTrainerCLIP']:.2f}", _ratio(results["training"]["throughput_ratio"])))
    if "prediction" in results:
        prediction = results["prediction"]
        theirs, ours = prediction["nnUNetv2_predict"], prediction["nnunet_clip_predict"]
        rows += [(f"(b) predict {'×'.join(map(str, prediction['ct_zyx']))}, 32 classes: wall time (s)",
                  f"{theirs['seconds']:.1f}", f"{ours['seconds']:.1f}", _ratio(prediction["time_ratio"], "≤ 1.0×")),
                 ("(b) predict: peak GPU memory, allocator reserved (GB)", _gb(theirs["gpu_memory"]["reserved_gb"]),
                  _gb(ours["gpu_memory"]["reserved_gb"]), "target ≤ 8 GB for nnunet-clip"),
                 ("(b) predict: peak host memory, PSS (GB)", _gb(theirs["peak_memory_gb"]), _gb(ours["peak_memory_gb"]),
                  "")]
    plans = results["plans"]
    head = (f"{env['device']}, torch {env['torch']}, {env['date']}, torch.compile {results['compile']}; "
            f"3d_fullres plans: patch {'×'.join(map(str, plans['patch_size']))}, batch {plans['batch_size']}, "
            f"features {plans['features_per_stage'][0]}–{plans['features_per_stage'][-1]}\n\n")
    table = ["| measure | nnU-Net | nnunet-clip | ratio |", "|---|---|---|---|"]
    return head + "\n".join(table + [f"| {' | '.join(row)} |" for row in rows])


MEASURES = ("heads", "training", "prediction")


def main() -> None:
    if sys.argv[1:2] == ["--entry-point"]:  # worker: the rest of the line is a console command
        run_entry_point(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script (no figures)")
    parser.add_argument("--only", nargs="+", choices=MEASURES, default=list(MEASURES),
                        help="run only these measures (heads: a, prediction: b, training: c)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both trainers' networks and both "
                        "predictors' (nnU-Net compiles by default on a GPU, nnunet-clip only when asked); default: "
                        "neither")
    parser.add_argument("--repeats", type=int, default=1, help="(a) processes per trainer; the fastest counts")
    parser.add_argument("--out", type=Path, help="write the results as JSON here, after each measure")
    parser.add_argument("--work", type=Path, help="working folder, kept (default: a temporary one, removed)")
    parser.add_argument("--throughput-worker", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.throughput_worker:
        print(json.dumps(training_throughput(args.throughput_worker, args.device, args.warmup, args.iterations)))
        return
    sizes = QUICK if args.quick else FULL
    results = {"environment": environment(args.device), "quick": args.quick, "compile": args.compile,
               "sizes": asdict(sizes)}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        os.environ.update({"nnUNet_raw": str(work / "raw"), "nnUNet_preprocessed": str(work / "pre"),
                           "nnUNet_results": str(work / "res"), "nnUNet_compile": str(args.compile).lower()})
        from nnunet_clip.plugin import use_plugin_trainers

        use_plugin_trainers()  # nnUNetv2_predict finds the trainer class by name
        print("preparing the dataset and nnU-Net's plans ...", file=sys.stderr, flush=True)
        results["plans"] = head_overhead.prepare(work, sizes.dataset, sizes.spacing)
        measures = {"heads": lambda: head_overhead.compare(dict(os.environ), args.device, sizes.steps,
                                                           args.repeats, 0),
                    "training": lambda: compare_training(args.device, sizes),
                    "prediction": lambda: compare_prediction(work, args.device, sizes)}
        for name in (m for m in MEASURES if m in args.only):
            print(f"{name} ...", file=sys.stderr, flush=True)
            results[name] = measures[name]()
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
