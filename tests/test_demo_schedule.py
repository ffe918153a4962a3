"""The demo's iterations per epoch: fitted to a deadline on a simulated clock, or replayed from a list."""
from __future__ import annotations

import pytest

from nnunet_clip.demo.schedule import DeadlineIterations, ListedIterations


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SimulatedTrainer:
    """nnU-Net's epoch loop (``nnUNetTrainer.run_training``) on a simulated clock: each iteration costs
    ``seconds_per_iteration(epoch)`` and validation and checkpoints ``seconds_between`` per epoch."""

    def __init__(self, clock: Clock, epochs: int, seconds_per_iteration, seconds_between: float):
        self.clock, self.num_epochs, self.current_epoch = clock, epochs, 0
        self.seconds_per_iteration, self.seconds_between = seconds_per_iteration, seconds_between
        self.num_iterations_per_epoch = 0

    def on_train_epoch_start(self):
        pass

    def on_train_epoch_end(self, train_outputs):
        pass

    def run_training(self):
        for epoch in range(self.current_epoch, self.num_epochs):
            self.on_train_epoch_start()
            self.clock.now += self.num_iterations_per_epoch * self.seconds_per_iteration(epoch)
            self.on_train_epoch_end([])
            self.clock.now += self.seconds_between
            self.current_epoch += 1


def train_to_deadline(seconds_per_iteration, deadline=300.0, epochs=60, between=0.5, first=16):
    clock = Clock()
    trainer = SimulatedTrainer(clock, epochs, seconds_per_iteration, between)
    schedule = DeadlineIterations(deadline, first, clock=clock)
    schedule.attach(trainer)
    trainer.run_training()
    return clock.now, schedule.trained


def test_the_epochs_fill_the_time_to_the_deadline():
    end, trained = train_to_deadline(lambda epoch: 0.1)
    assert len(trained) == 60 and trained[0] == 16
    # (300 s - 60 epochs × 0.5 s between them) / 0.1 s per iteration: 2700 iterations, less what the
    # rounding down of the last epoch leaves
    assert 2690 <= sum(trained) <= 2700
    assert 299 <= end <= 300


def test_a_machine_that_slows_down_during_training_still_ends_near_the_deadline():
    end, trained = train_to_deadline(lambda epoch: 0.1 if epoch < 20 else 0.2)
    # the three epochs before the median sees the slowdown overrun their share; the later ones make it up
    assert 299 <= end <= 300
    assert max(trained[30:]) < min(trained[5:20])  # fewer iterations once each costs twice as much


def test_a_deadline_already_passed_trains_one_iteration_per_epoch():
    _, trained = train_to_deadline(lambda epoch: 0.1, deadline=1.0)
    assert trained == [16] + [1] * 59


def test_listed_iterations_are_replayed_for_a_training_of_as_many_epochs():
    clock = Clock()
    trainer = SimulatedTrainer(clock, 3, lambda epoch: 0.1, 0.0)
    schedule = ListedIterations([5, 7, 2])
    schedule.attach(trainer)
    trainer.run_training()
    assert schedule.trained == [5, 7, 2]
    assert clock.now == pytest.approx(1.4)
    with pytest.raises(ValueError, match="3 epochs listed for a training of 4"):
        schedule.choose(0, 4)
