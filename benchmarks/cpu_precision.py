"""Forward + backward time of the demo's network on a CPU: float32 contiguous, float32 channels-last,
bfloat16 autocast channels-last (what ``nnUNetTrainerCLIP`` trains with on a CPU that computes
in bfloat16, ``use_cpu_fast_paths``).

The network and input are those of ``head_chunks.py`` (demo budget, batch 2, 32 classes, deep
supervision). The ways alternate over rounds; the median per way is reported.

    python benchmarks/cpu_precision.py [--patch Z Y X] [--steps 12] [--rounds 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch

from head_chunks import demo_network, parse_timing_args, step_seconds
from nnunet_clip.demo.pipeline import Budget
from nnunet_clip.trainers.nnUNetTrainerCLIP import cpu_computes_bfloat16

WAYS = {  # memory format, autocast dtype
    "float32 contiguous": (torch.contiguous_format, None),
    "float32 channels-last": (torch.channels_last_3d, None),
    "bfloat16 autocast channels-last": (torch.channels_last_3d, torch.bfloat16),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch", type=int, nargs=3, help="default: the demo budget's")
    args = parse_timing_args(parser)
    budget = Budget() if args.patch is None else replace(Budget(), patch_size=tuple(args.patch))
    network, patch = demo_network(budget)
    x = torch.randn(budget.batch_size, 1, *patch)
    results: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way, (memory_format, dtype) in WAYS.items():
            network.to(memory_format=memory_format).autocast_dtype = dtype
            results[way].append(round(step_seconds(network, x.to(memory_format=memory_format), args.steps), 4))
    print(json.dumps({"patch": patch, "batch": budget.batch_size, "threads": args.threads,
                      "bfloat16_kernels": cpu_computes_bfloat16(),
                      "seconds_per_pass": results}, indent=1))


if __name__ == "__main__":
    main()
