"""nnUNetTrainerCLIP's progress log: nnU-Net's progress.png redrawn at most every PLOT_INTERVAL_SECONDS
and at the end; a moving average of the pseudo Dice that partial labels cannot turn into NaN."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from nnunetv2.training.logging.nnunet_logger import MetaLogger

from conftest import make_trainer
from nnunet_clip import progress_plot
from nnunet_clip.progress_plot import ThrottledProgressPlot


class RecordingLogger:
    def __init__(self):
        self.plotted_at = []
        self.clock = 0.0

    def plot_progress_png(self, output_folder):
        self.plotted_at.append(self.clock)

    def get_value(self, key, step):
        return f"{key}@{step}"


def test_progress_plot_is_redrawn_only_after_the_interval_or_when_forced(monkeypatch):
    logger = RecordingLogger()
    monkeypatch.setattr(progress_plot, "monotonic", lambda: logger.clock)
    throttled = ThrottledProgressPlot(logger, interval=30)
    for epoch_end in (0, 10, 29, 31, 45, 62, 70):
        logger.clock = epoch_end
        throttled.plot_progress_png("out")
    throttled.plot_progress_png("out", force=True)
    assert logger.plotted_at == [0, 31, 62, 70]


def test_the_throttled_logger_is_otherwise_the_wrapped_one():
    assert ThrottledProgressPlot(RecordingLogger()).get_value("ema_fg_dice", -1) == "ema_fg_dice@-1"


def test_the_trainer_draws_the_plot_at_the_end_of_training_however_recent_the_last(tiny_preprocessed, tmp_path,
                                                                                   monkeypatch):
    drawn = []
    monkeypatch.setattr(MetaLogger, "plot_progress_png", lambda self, folder: drawn.append(folder))
    trainer = make_trainer(tiny_preprocessed)
    trainer.initialize()
    trainer.output_folder, trainer.log_file = str(tmp_path), str(tmp_path / "training_log.txt")
    trainer.logger.plot_progress_png(trainer.output_folder)  # an epoch's end: drawn
    trainer.logger.plot_progress_png(trainer.output_folder)  # the next, within 30 s: skipped
    trainer.on_train_end()
    assert drawn == [str(tmp_path)] * 2
    logging = torch.load(tmp_path / "checkpoint_final.pth", map_location="cpu", weights_only=False)["logging"]
    assert set(logging) >= {"train_losses", "ema_fg_dice"}  # nnU-Net's log, through the wrapper


def _validation(tp: float, fp: float, fn: float) -> list[dict]:
    return [{"loss": np.array(0.5), "tp_hard": np.array([tp, 0.0]), "fp_hard": np.array([fp, 0.0]),
             "fn_hard": np.array([fn, 0.0])}]


def test_an_epoch_without_annotated_classes_in_validation_keeps_the_moving_average(tiny_preprocessed):
    trainer = make_trainer(tiny_preprocessed)
    for epoch, counts in enumerate([(1, 0, 1), (0, 0, 0), (3, 1, 0)]):  # Dice 2/3, none, 6/7
        trainer.current_epoch = epoch
        trainer.on_validation_epoch_end(_validation(*counts))
    mean, ema = (trainer.logger.get_value(key, step=None) for key in ("mean_fg_dice", "ema_fg_dice"))
    assert np.isnan(mean[1])
    assert ema == pytest.approx([2 / 3, 2 / 3, 0.9 * 2 / 3 + 0.1 * 6 / 7])


def test_the_best_checkpoint_follows_the_moving_average_after_epochs_without_annotated_classes(
        tiny_preprocessed, tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(MetaLogger, "plot_progress_png", lambda self, folder: None)
    trainer = make_trainer(tiny_preprocessed)
    trainer.initialize()
    trainer.output_folder, trainer.log_file = str(tmp_path), str(tmp_path / "training_log.txt")
    monkeypatch.setattr(trainer, "save_checkpoint", lambda filename: saved.append((trainer.current_epoch, filename)))
    for counts in [(0, 0, 0), (1, 0, 1), (0, 0, 0), (3, 1, 0)]:  # Dice none, 2/3, none, 6/7
        trainer.on_epoch_start()
        trainer.logger.log("train_losses", -0.5, trainer.current_epoch)
        trainer.on_validation_epoch_end(_validation(*counts))
        trainer.on_epoch_end()  # nnU-Net's: checkpoint_best when the moving average rises
    best = [epoch for epoch, filename in saved if filename.endswith("checkpoint_best.pth")]
    assert best == [0, 1, 3]  # nnU-Net alone: [0], its average NaN from the first epoch on
    assert trainer.logger.get_value("ema_fg_dice", step=None)[1:] == pytest.approx(
        [2 / 3, 2 / 3, 0.9 * 2 / 3 + 0.1 * 6 / 7])
