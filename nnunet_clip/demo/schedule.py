"""How many iterations each epoch of the demo's training runs: fitted to a deadline, or as listed.

nnU-Net's poly schedule counts epochs, so the demo fixes the number of epochs and chooses the
iterations of each epoch just before it starts (``trainer.num_iterations_per_epoch`` is read then).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

RECENT_EPOCHS = 5
"""Epochs whose timings estimate the next (their median: a slow first epoch soon drops out)."""


class IterationSchedule:
    """Chooses the iterations of each epoch of a trainer; ``trained`` lists those chosen so far."""

    def __init__(self):
        self.trained: list[int] = []

    def choose(self, epoch: int, epochs: int) -> int:
        raise NotImplementedError

    def epoch_trained(self) -> None:
        """Called when an epoch's iterations are done (before its validation)."""

    def attach(self, trainer) -> None:
        """Make ``trainer`` (an nnUNetTrainer) ask this schedule before each epoch. nnU-Net has no callbacks,
        so this wraps the trainer's ``on_train_epoch_start`` and ``on_train_epoch_end``."""
        start, end = trainer.on_train_epoch_start, trainer.on_train_epoch_end

        def on_train_epoch_start():
            trainer.num_iterations_per_epoch = self.choose(trainer.current_epoch, trainer.num_epochs)
            self.trained.append(trainer.num_iterations_per_epoch)
            start()

        def on_train_epoch_end(train_outputs):
            self.epoch_trained()
            end(train_outputs)

        trainer.on_train_epoch_start, trainer.on_train_epoch_end = on_train_epoch_start, on_train_epoch_end


class ListedIterations(IterationSchedule):
    """Iterations listed epoch by epoch: a fixed count, or an earlier run's (the same budget for another
    trainer)."""

    def __init__(self, iterations: Sequence[int]):
        super().__init__()
        self.iterations = list(iterations)

    def choose(self, epoch: int, epochs: int) -> int:
        if len(self.iterations) != epochs:
            raise ValueError(f"{len(self.iterations)} epochs listed for a training of {epochs}")
        return self.iterations[epoch]


class DeadlineIterations(IterationSchedule):
    """As many iterations per epoch as let the remaining epochs end by ``deadline`` (a value of ``clock``),
    at the time per iteration and the time between epochs (validation, checkpoints) measured so far;
    ``first`` for the first epoch. Re-estimated before every epoch, so a machine that slows down or
    speeds up during training still ends near the deadline."""

    def __init__(self, deadline: float, first: int, clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.deadline, self.first, self.clock = deadline, first, clock
        self.iteration_seconds: list[float] = []
        self.between_epochs_seconds: list[float] = []
        self._started = self._ended = None

    def choose(self, epoch: int, epochs: int) -> int:
        now = self._started = self.clock()
        if self._ended is not None:
            self.between_epochs_seconds.append(now - self._ended)
        if not self.iteration_seconds:
            return self.first
        per_iteration = statistics.median(self.iteration_seconds[-RECENT_EPOCHS:])
        between = statistics.median(self.between_epochs_seconds[-RECENT_EPOCHS:])
        left = epochs - epoch
        return max(1, int((self.deadline - now - left * between) / (left * per_iteration)))

    def epoch_trained(self) -> None:
        self._ended = self.clock()
        self.iteration_seconds.append((self._ended - self._started) / self.trained[-1])
