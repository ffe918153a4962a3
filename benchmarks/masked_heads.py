"""Training pass of the demo's network with every class's heads against only each case's annotated ones.

In training, ``nnUNetTrainerCLIP`` computes each case's heads for the classes its source annotates
(``UniversalUNet.computing_only``): the masked loss gives the others zero gradient. This times one
forward + backward pass (no optimizer) of the network ``nnunet-clip demo`` trains (demo budget,
batch 2, 32 classes, deep supervision, channels-last) on random batches of the demo's cases, with
their annotated classes taken from the demo's converted sources. Both ways alternate over rounds
on the same batches; the median per way is reported.

    python benchmarks/masked_heads.py [--steps 12] [--rounds 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from contextlib import nullcontext
from pathlib import Path

import torch

from head_chunks import demo_network, parse_timing_args, step_seconds
from nnunet_clip.demo.pipeline import Budget
from nnunet_clip.taxonomy import CLASS_NAMES


def demo_annotations() -> list[torch.Tensor]:
    """(K,) bool annotated classes of every demo training case, from the converted synthetic sources."""
    from dataset_conversion.convert import convert
    from nnunet_clip.synthetic.sources import write_sources

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["nnUNet_raw"] = tmp
        for source, folder in write_sources(Path(tmp, "sources")).items():
            convert(source, folder, 500, "Phantoms")
        annotated = json.loads(next(Path(tmp).glob("Dataset500_*/dataset.json")).read_text())["annotated_classes"]
    return [torch.tensor([c in classes for c in CLASS_NAMES]) for classes in annotated.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = parse_timing_args(parser)
    cases = demo_annotations()
    budget = Budget()
    network, patch = demo_network(budget)
    x = torch.randn(budget.batch_size, 1, *patch).to(memory_format=torch.channels_last_3d)
    draws = torch.randint(len(cases), (args.steps, budget.batch_size)).tolist()
    masks = [torch.stack([cases[i] for i in draw]) for draw in draws]
    ways = {"all classes": lambda step: nullcontext(),
            "annotated classes": lambda step: network.computing_only(masks[step])}
    results = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way, context in ways.items():
            results[way].append(round(step_seconds(network, x, len(masks), context), 4))
    print(json.dumps({"patch": patch, "batch": budget.batch_size, "threads": args.threads,
                      "classes": len(CLASS_NAMES), "cases": len(cases),
                      "annotated_classes_per_case": round(sum(int(m.sum()) for m in cases) / len(cases), 2),
                      "seconds_per_pass": results}, indent=1))


if __name__ == "__main__":
    main()
