"""nnUNet_clip_seed makes a CPU training repeatable: same seed, same weights; another seed, other weights."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import make_trainer
from nnunet_clip.errors import InputError
from nnunet_clip.logit_range import FILE_NAME


def train_a_few_iterations(preprocessed, iterations: int = 3):
    """The weights after nnU-Net's training start and ``iterations`` training steps of one epoch, and the trainer."""
    trainer = make_trainer(preprocessed)
    trainer.on_train_start()
    trainer.on_epoch_start()
    trainer.on_train_epoch_start()
    outputs = [trainer.train_step(next(trainer.dataloader_train)) for _ in range(iterations)]
    trainer.on_train_epoch_end(outputs)
    return {k: v.detach().clone() for k, v in trainer.network.state_dict().items() if torch.is_tensor(v)}, trainer


def test_the_same_seed_trains_the_same_weights_and_another_seed_others(tiny_preprocessed, monkeypatch):
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    runs = {}
    for name, seed in (("first", "7"), ("again", "7"), ("other", "8")):
        monkeypatch.setenv("nnUNet_clip_seed", seed)
        runs[name], trainer = train_a_few_iterations(tiny_preprocessed)
    first, again, other = runs["first"], runs["again"], runs["other"]
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    changed = [k for k in first if first[k].is_floating_point() and not torch.equal(first[k], other[k])]
    assert "controller.mlp.0.weight" in changed and "encoder.stages.0.0.convs.0.conv.weight" in changed
    record = json.loads((Path(trainer.output_folder) / FILE_NAME).read_text())
    assert len(record["per_epoch"]) == 1 and 0 < record["largest"] == record["per_epoch"][0] < 1e4


def test_a_seed_that_is_not_an_integer_is_a_one_line_error(tiny_preprocessed, monkeypatch):
    monkeypatch.setenv("nnUNet_clip_seed", "seven")
    with pytest.raises(InputError, match="nnUNet_clip_seed='seven': expected an integer"):
        make_trainer(tiny_preprocessed)
