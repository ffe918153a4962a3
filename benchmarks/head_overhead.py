"""Training-step time and peak memory of nnUNetTrainerCLIP against nnU-Net's stock region trainer.

Both trainers run on the same plans (nnU-Net's default 3d_fullres network, planned for the
dataset: five cases of ``--shape`` voxels at ``--spacing``; by default 48×64×64 at 1 mm, which
nnU-Net plans as 48×64×64 patches, batch 2), the same 32-class region dataset and the same
batch; each in its own process.
Time: median of timed ``train_step`` calls (forward + backward + optimizer) after warm-up, as wall
time and as CPU time of the process (less disturbed by other load on a shared machine). Memory:
on GPU the peak of ``torch.cuda.max_memory_allocated`` during the steps; on CPU the peak resident
set size during the steps minus the resident size before the first step.

    python benchmarks/head_overhead.py [--device cpu|cuda] [--steps 5] [--repeats 2] [--threads N] [--out results.json]
        [--shape 48 64 64] [--spacing 1 1 1]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from blob_dataset import write_blob_dataset

DATASET_ID = 993
TRAINERS = ("nnUNetTrainer", "nnUNetTrainerCLIP")
SHAPE = (48, 64, 64)


def write_dataset(raw: Path, shape=SHAPE, spacing=(1.0, 1.0, 1.0)) -> None:
    """Five cases of ``shape`` (z y x) with a box of every class; half the cases annotate only 14 classes."""
    from nnunet_clip.taxonomy import CLASS_NAMES

    write_blob_dataset(raw / f"Dataset{DATASET_ID}_HeadOverhead", shape, 5, tuple(max(3, s // 20) for s in shape),
                       spacing, annotated=lambda i: CLASS_NAMES if i % 2 else CLASS_NAMES[:14])


def prepare(root: Path, shape=SHAPE, spacing=(1.0, 1.0, 1.0)) -> dict:
    """Raw dataset, nnU-Net plans and preprocessing, text embeddings (random CLIP weights); the planned
    3d_fullres patch size, batch size and features per stage."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                      preprocess)

    from nnunet_clip.cli import main as nnunet_clip

    write_dataset(root / "raw", shape, spacing)
    processes = min(8, os.cpu_count() or 1)
    extract_fingerprints([DATASET_ID], num_processes=processes)
    plans = plan_experiments([DATASET_ID])
    preprocess([DATASET_ID], configurations=("3d_fullres",), num_processes=(processes,))
    nnunet_clip(["embed", "-d", str(DATASET_ID), "--pretrained", "none"])
    config = json.loads(Path(root / "pre" / f"Dataset{DATASET_ID}_HeadOverhead" / f"{plans}.json").read_text()
                        )["configurations"]["3d_fullres"]
    return {"patch_size": config["patch_size"], "batch_size": config["batch_size"],
            "features_per_stage": config["architecture"]["arch_kwargs"]["features_per_stage"]}


def fixed_batch(trainer) -> dict:
    """A batch of the first cases, one patch each, through nnU-Net's validation transforms (regions, deep
    supervision)."""
    import torch

    dataset_tr, _ = trainer.get_tr_and_val_datasets()
    keys = sorted(dataset_tr.identifiers)[:trainer.batch_size]
    transform = trainer.get_validation_transforms(trainer._get_deep_supervision_scales(),
                                                  regions=trainer.label_manager.foreground_regions)
    samples = []
    for k in keys:
        data, seg, _, _ = dataset_tr.load_case(k)
        crop = tuple(slice(0, s) for s in trainer.configuration_manager.patch_size)
        samples.append(transform(image=torch.from_numpy(np.asarray(data)[(slice(None), *crop)]).float(),
                                 segmentation=torch.from_numpy(np.asarray(seg)[(slice(None), *crop)]).short()))
    return {"data": torch.stack([s["image"] for s in samples]),
            "target": [torch.stack([s["segmentation"][i] for s in samples]) for i in range(len(samples[0]["segmentation"]))],
            "keys": keys}


def measure(trainer_name: str, device: str, steps: int, threads: int) -> dict:
    """Run in a fresh process: time and peak memory of ``steps`` training steps."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    from nnunet_clip.plugin import with_plugin_trainers

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    trainer = with_plugin_trainers(get_trainer_from_args, str(DATASET_ID), "3d_fullres", 0, trainer_name,
                                   device=torch.device(device))
    trainer.initialize()
    batch = fixed_batch(trainer)
    trainer.network.train()
    for _ in range(2):
        trainer.train_step(batch)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = _current_rss_mb()
    times, cpu_times = [], []
    for _ in range(steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.train_step(batch)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    peak = (torch.cuda.max_memory_allocated() / 2 ** 20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before)
    return {"trainer": trainer_name, "device": device, "threads": torch.get_num_threads(), "step_s": float(np.median(times)),
            "step_s_std": float(np.std(times)), "step_cpu_s": float(np.median(cpu_times)),
            "peak_memory_mb": float(peak),
            "parameters": sum(p.numel() for p in trainer.network.parameters())}


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def compare(env: dict, device: str, steps: int, repeats: int, threads: int) -> dict:
    """Both trainers, ``repeats`` processes each (alternating), on the prepared dataset; the fastest counts."""
    runs = {name: [] for name in TRAINERS}
    for _ in range(repeats):  # alternate, so that load from elsewhere hits both alike
        for name in TRAINERS:
            out = subprocess.run([sys.executable, __file__, "--worker", name, "--device", device, "--steps", str(steps),
                                  "--threads", str(threads)], env=env, check=True, stdout=subprocess.PIPE, text=True,
                                 encoding="utf-8")
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    stock, clip = (min(runs[name], key=lambda r: r["step_s"]) for name in TRAINERS)
    return {"runs": runs, "time_ratio": clip["step_s"] / stock["step_s"],
            "cpu_time_ratio": clip["step_cpu_s"] / stock["step_cpu_s"],
            "memory_ratio": clip["peak_memory_mb"] / stock["peak_memory_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="processes per trainer; the fastest counts")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads per process (0: torch's default); 1 makes CPU time a clean measure")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--shape", type=int, nargs=3, default=SHAPE, help="the dataset's cases, z y x")
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.0, 1.0, 1.0), help="z y x, mm")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.device, args.steps, args.threads)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
               "nnUNet_results": str(root / "res")}
        os.environ.update(env)
        plans = prepare(root, tuple(args.shape), tuple(args.spacing))
        summary = {"plans": plans, **compare(env, args.device, args.steps, args.repeats, args.threads)}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
