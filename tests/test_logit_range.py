"""``fold_X/logit_range.json``: the largest |logit| of each epoch's training batches."""
from __future__ import annotations

import json

import torch

from nnunet_clip.logit_range import FILE_NAME, LogitRange


def test_each_epoch_keeps_its_largest_logit_over_batches_and_levels_and_a_resumed_epoch_replaces_its_value(tmp_path):
    record = LogitRange(tmp_path)
    record.see([torch.tensor([[1.0, -7.5]]), torch.tensor([3.0])])  # deep supervision levels
    record.see(torch.tensor([-2.0, 4.0]))
    assert record.end_epoch(0) == 7.5
    record.see(torch.tensor([12.0]))
    assert record.end_epoch(1) == 12.0
    resumed = LogitRange(tmp_path)  # nnUNetv2_train --c from epoch 1's checkpoint
    resumed.see(torch.tensor([-3.0]))
    assert resumed.end_epoch(1) == 3.0
    assert json.loads((tmp_path / FILE_NAME).read_text()) == {"largest": 7.5, "per_epoch": [7.5, 3.0]}
