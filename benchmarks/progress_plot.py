"""Time nnU-Net's per-epoch progress plot (what ``nnUNetTrainerCLIP`` throttles, progress_plot.py).

Fills nnU-Net's own training logger with ``--epochs`` epochs of values and draws progress.png
``--repeats`` times; prints the median seconds per drawing.

    python benchmarks/progress_plot.py [--epochs 160] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from time import perf_counter

from nnunetv2.training.logging.nnunet_logger import LocalLogger

KEYS = ("mean_fg_dice", "ema_fg_dice", "train_losses", "val_losses", "lrs", "epoch_start_timestamps",
        "epoch_end_timestamps")


def filled_logger(epochs: int) -> LocalLogger:
    logger = LocalLogger()
    for epoch in range(epochs):
        for key in KEYS:
            logger.log(key, epoch + (2.5 if key == "epoch_end_timestamps" else 0.0), epoch)
        logger.log("dice_per_class_or_region", [0.5] * 32, epoch)
    return logger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=160, help="epochs logged before drawing")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logger = filled_logger(args.epochs)
    seconds = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            start = perf_counter()
            logger.plot_progress_png(folder)
            seconds.append(round(perf_counter() - start, 3))
    print(json.dumps({"epochs": args.epochs, "seconds": seconds, "median": statistics.median(seconds)}))


if __name__ == "__main__":
    main()
