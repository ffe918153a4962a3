"""nnU-Net's training progress plot, redrawn at most every half minute."""
from __future__ import annotations

from time import monotonic

PLOT_INTERVAL_SECONDS = 30.0


class ThrottledProgressPlot:
    """nnU-Net's training logger whose ``plot_progress_png`` redraws ``progress.png`` only when
    ``interval`` seconds have passed since the last drawing, or when forced; everything else is the
    wrapped logger's.

    nnU-Net redraws its 3000×5400-pixel figure after every epoch, about 0.8 s of a CPU. On a GPU an
    epoch takes longer than the interval, so the plot still follows every epoch; in the demo's
    CPU training (2.6 s epochs) the redrawing took a fifth of the time (docs/performance.md).
    """

    def __init__(self, logger, interval: float = PLOT_INTERVAL_SECONDS):
        self._logger = logger
        self.interval = interval
        self._last_plot: float | None = None

    def __getattr__(self, name: str):
        if name == "_logger":  # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self._logger, name)

    def plot_progress_png(self, output_folder: str, force: bool = False) -> None:
        if force or self._last_plot is None or monotonic() - self._last_plot >= self.interval:
            self._logger.plot_progress_png(output_folder)
            self._last_plot = monotonic()
