"""What the demo shows a person: one line per step, a progress bar over the training iterations
(time left, current pseudo Dice), a summary table at the end. Everything the steps print, nnU-Net's
full output included (and that of the processes they start), goes to ``logs/<n>-<step>.log`` in
the output folder instead of the terminal.
"""
from __future__ import annotations

import math
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence, TextIO

from tqdm import tqdm


class Console:
    """The terminal, with each step's own output sent to a log file."""

    def __init__(self, total_steps: int, logs: Path):
        self.total, self.done, self.seconds = total_steps, 0, {}
        self.logs = logs
        self.start = time.perf_counter()
        sys.stdout.flush()
        sys.stderr.flush()
        self.out: TextIO = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
        self.err: TextIO = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8")

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    @contextmanager
    def step(self, name: str) -> Iterator["Step"]:
        """Run one step with the output of this process (file descriptors 1 and 2) in its log file;
        its line on the terminal says how it went and how long it took."""
        self.done += 1
        label = f"[{self.done}/{self.total}] {name}"
        log = self.logs / f"{self.done:02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        step = Step(self, label)
        t = time.perf_counter()
        with open(log, "w", encoding="utf-8") as f, _redirected(f):
            try:
                yield step
            except BaseException:
                step.finish(f"failed after {time.perf_counter() - t:.1f} s; its output: {log}")
                raise
        self.seconds[name] = round(time.perf_counter() - t, 2)
        step.finish(f"{step.result}{'; ' if step.result else ''}{_duration(self.seconds[name])}")

    def table(self, header: Sequence[str], rows: Sequence[Sequence]) -> None:
        """A left-aligned text table: the first column left, the others right."""
        cells = [list(map(str, header)), *[[str(c) for c in row] for row in rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for row in cells:
            self.line("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


class Step:
    """One running step: its line, and the training progress bar if it trains."""

    def __init__(self, console: Console, label: str):
        self.console, self.label, self.result = console, label, ""
        self.bar: tqdm | None = None
        console.out.write(f"{label} ...")
        console.out.flush()

    def showing(self, schedule) -> "ShownTraining":
        """``schedule`` (an ``IterationSchedule``) that also shows this step's training progress bar."""
        return ShownTraining(schedule, self)

    def finish(self, text: str) -> None:
        """Replace the step's line (or its bar) by the line saying how it went."""
        if self.bar is not None:
            self.bar.close()
        self.console.out.write(f"\r{self.label}: {text}\n")
        self.console.out.flush()


class ShownTraining:
    """What ``pipeline.train`` attaches to its trainer: the iteration schedule, and a bar over the
    iterations done of those planned (the ones trained so far, and the current epoch's for each
    epoch left), with the time left and the pseudo Dice of the last epoch."""

    def __init__(self, schedule, step: Step):
        self.schedule, self.step = schedule, step

    def attach(self, trainer) -> None:
        self.schedule.attach(trainer)
        console, schedule = self.step.console, self.schedule
        console.out.write("\r")
        bar = self.step.bar = tqdm(total=1, desc=self.step.label, unit="it", file=console.err, leave=False,
                                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                              "iterations, {remaining} left{postfix}")
        start, step, end = trainer.on_train_epoch_start, trainer.train_step, trainer.on_epoch_end

        def on_train_epoch_start():
            start()
            left = trainer.num_epochs - trainer.current_epoch - 1
            bar.total = sum(schedule.trained) + left * trainer.num_iterations_per_epoch
            bar.refresh()

        def train_step(batch):
            out = step(batch)
            bar.update()
            return out

        def on_epoch_end():
            dice = trainer.logger.get_value("ema_fg_dice", step=-1)
            bar.set_postfix_str(f"pseudo Dice {dice:.3f}" if not math.isnan(dice) else "")
            end()

        trainer.on_train_epoch_start, trainer.train_step, trainer.on_epoch_end = \
            on_train_epoch_start, train_step, on_epoch_end


@contextmanager
def _redirected(log: TextIO) -> Iterator[None]:
    """File descriptors 1 and 2 (this process and the processes it starts) into ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in zip((1, 2), saved):
            os.dup2(original, fd)
            os.close(original)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
