"""nnUNetTrainerCLIP redraws nnU-Net's progress.png at most every PLOT_INTERVAL_SECONDS, and at the end."""
from __future__ import annotations

import torch

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


def test_the_trainer_logs_through_the_throttled_logger(trained_model):
    fold = trained_model.model_folder / "fold_0"
    logging = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)["logging"]
    assert len(logging["train_losses"]) == 1  # the 1-epoch trainer's log, kept by nnU-Net's logger inside
    assert (fold / "progress.png").is_file()
