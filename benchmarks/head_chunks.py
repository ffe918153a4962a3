"""Forward + backward time of the demo's Universal Model network for several head chunk sizes (CPU).

The dynamic heads run in chunks of ``CHUNK_ELEMENTS`` hidden-activation elements
(``network/dynamic_heads.py``). This times one training forward + backward pass (no optimizer)
of the network ``nnunet-clip demo`` trains: the demo budget's features, head input width and
patch, batch 2, 32 classes, deep supervision, channels-last as the demo runs it. Chunk sizes
alternate over rounds; the median per chunk size is reported.

    python benchmarks/head_chunks.py [--chunks 262144 1048576 4194304] [--steps 12] [--rounds 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext
from types import SimpleNamespace
from typing import Callable, ContextManager

import torch
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager

from nnunet_clip.demo.pipeline import Budget, demo_architecture
from nnunet_clip.network import dynamic_heads
from nnunet_clip.network.build import build_universal_network, universal_model_plans
from nnunet_clip.taxonomy import CLASS_NAMES

EMBEDDING_DIM = 512


def demo_network(budget: Budget) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """The demo's network (nnU-Net's default PlainConvUNet settings with ``demo_architecture``) and patch."""
    architecture, patch = demo_architecture(budget)
    kwargs = {
        "conv_op": "torch.nn.modules.conv.Conv3d", "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True}, **architecture}
    configuration = ConfigurationManager({
        "architecture": {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                         "arch_kwargs": kwargs, "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
        "patch_size": patch, "batch_size": budget.batch_size, "spacing": [1.0, 1.0, 1.0], "batch_dice": False})
    plans = SimpleNamespace(plans={"universal_model": universal_model_plans(
        list(CLASS_NAMES), EMBEDDING_DIM, None, budget.head_in_channels)})
    network = build_universal_network(plans, configuration, 1, len(CLASS_NAMES), enable_deep_supervision=True)
    network.set_class_embeddings(torch.randn(len(CLASS_NAMES), EMBEDDING_DIM))
    return network.to(memory_format=torch.channels_last_3d), tuple(patch)


def step_seconds(network: torch.nn.Module, x: torch.Tensor, steps: int,
                 context: Callable[[int], ContextManager] = lambda step: nullcontext()) -> float:
    """Median wall time of ``steps`` forward + backward passes after one warm-up pass; pass ``i``
    (0 to steps - 1; the warm-up repeats pass 0) runs inside ``context(i)``."""
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        with context(max(i - 1, 0)):
            sum(o.float().mean() for o in network(x)).backward()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def parse_timing_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse ``parser``'s options plus the timing ones (--steps, --rounds, --threads); set torch's
    thread count and seed."""
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[2 ** 18, 2 ** 20, 2 ** 22])
    args = parse_timing_args(parser)
    budget = Budget()
    network, patch = demo_network(budget)
    x = torch.randn(budget.batch_size, 1, *patch).to(memory_format=torch.channels_last_3d)
    results: dict[int, list[float]] = {c: [] for c in args.chunks}
    for _ in range(args.rounds):
        for chunk in args.chunks:
            dynamic_heads.CHUNK_ELEMENTS["cpu"] = chunk
            results[chunk].append(round(step_seconds(network, x, args.steps), 4))
    print(json.dumps({"patch": patch, "batch": budget.batch_size, "threads": args.threads,
                      "seconds_per_step": {str(c): r for c, r in results.items()}}, indent=1))


if __name__ == "__main__":
    main()
