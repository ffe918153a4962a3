"""The largest |logit| of the training batches, per epoch, in ``fold_X/logit_range.json``.

The heads' logits are unbounded; the network clips them to ±``LOGIT_BOUND`` outside training, so
that nnU-Net's float16 sliding window cannot overflow. This record shows whether that clip is a
guard or a necessity: a healthy run stays far inside it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch

FILE_NAME = "logit_range.json"


class LogitRange:
    """Collects the largest |logit| of an epoch's training batches and keeps one value per epoch."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / FILE_NAME
        self.per_epoch: list[float] = json.loads(self.path.read_text())["per_epoch"] if self.path.is_file() else []
        self._epoch: torch.Tensor | float = 0.0
        """The epoch's largest |logit| so far, kept on the logits' device: reading it would wait for the
        device at every step."""

    def see(self, logits: torch.Tensor | Sequence[torch.Tensor]) -> None:
        levels = [logits] if isinstance(logits, torch.Tensor) else logits
        for level in levels:
            self._epoch = torch.clamp_min(level.detach().abs().amax().float(), self._epoch)

    def end_epoch(self, epoch: int) -> float:
        """Record the epoch's largest |logit| (replacing a value of a resumed epoch) and write the file."""
        del self.per_epoch[epoch:]
        self.per_epoch.append(float(self._epoch))
        self._epoch = 0.0
        tmp = self.path.with_name(f".tmp-{os.getpid()}-{FILE_NAME}")
        tmp.write_text(json.dumps({"largest": self.largest, "per_epoch": self.per_epoch}))
        os.replace(tmp, self.path)
        return self.per_epoch[-1]

    @property
    def largest(self) -> float:
        return max(self.per_epoch, default=0.0)
