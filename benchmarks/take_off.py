"""When each class starts to be learned: the first epoch whose validation pseudo Dice exceeds a threshold.

Reads the per-epoch pseudo Dice that nnU-Net keeps in a checkpoint's logging, for every training run
under the given folders (e.g. the phantom benchmark's ``OUT/phantoms_<p>/runs``), and prints one row
per run: the epoch at which each named class first passed the threshold, "-" if it never did within
the run. A class that takes off late, or never, in some runs is the lost class of docs/benchmarks.md.

    python benchmarks/take_off.py benchmark_output/phantoms_0/runs --classes "right adrenal gland" rectum prostate
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch


def take_off_epochs(checkpoint: Path, classes: list[str], threshold: float) -> tuple[int, dict[str, int | None]]:
    """Epochs trained, and class -> first epoch with pseudo Dice > ``threshold`` (None: never)."""
    logging = torch.load(checkpoint, map_location="cpu", weights_only=False)["logging"]
    names = json.loads((checkpoint.parent.parent / "dataset.json").read_text())["labels"]
    order = [n for n in names if n != "background"]
    per_epoch = logging["dice_per_class_or_region"]
    return len(per_epoch), {c: next((e for e, dice in enumerate(per_epoch)
                                     if not math.isnan(dice[order.index(c)]) and dice[order.index(c)] > threshold),
                                    None) for c in classes}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--classes", nargs="+", default=["right adrenal gland", "left adrenal gland", "rectum", "prostate",
                                                     "left head of femur", "right head of femur"])
    p.add_argument("--threshold", type=float, default=0.1)
    args = p.parse_args(argv)
    print("| run | epochs | " + " | ".join(args.classes) + " |")
    print("|---|---|" + "---|" * len(args.classes))
    for folder in args.folders:
        for checkpoint in sorted(folder.glob("**/checkpoint_final.pth")):
            epochs, first = take_off_epochs(checkpoint, args.classes, args.threshold)
            run = checkpoint.relative_to(folder).parts[0]
            print(f"| {run} | {epochs} | " + " | ".join("-" if e is None else str(e) for e in first.values()) + " |")


if __name__ == "__main__":
    main()
