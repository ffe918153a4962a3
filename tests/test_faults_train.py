"""``nnUNetv2_train`` killed while it saves a checkpoint, then resumed with ``--c``
(docs/reliability.md): the run finishes from the last whole checkpoint, with the partial-label
masks of dataset.json, and leaves nothing half-written."""
from __future__ import annotations

import json
import os

import torch

import faults
from conftest import NNUNET_ROOT, TINY_DATASET_ID, run_command
from nnunet_clip.plugin import TRAINER_DIR

TRAINER = "nnUNetTrainerCLIP_checkpointEveryEpoch"
TRAINER_MODULE = f'''
import torch

from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP


class {TRAINER}(nnUNetTrainerCLIP):
    """Three epochs of two iterations, a checkpoint after each."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 3, 2, 1
        self.save_every = 1
'''


def test_killed_while_saving_a_checkpoint_then_resumed_with_c(tiny_preprocessed, tmp_path, monkeypatch):
    (tmp_path / "trainers").mkdir()
    (tmp_path / "trainers" / f"{TRAINER}.py").write_text(TRAINER_MODULE)
    monkeypatch.setenv("nnUNet_extTrainer", os.pathsep.join([str(TRAINER_DIR), str(tmp_path / "trainers")]))
    # augmentation in the training process: a killed trainer's worker would keep its output pipe open
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    command = ["nnUNetv2_train", str(TINY_DATASET_ID), "3d_fullres", "0", "-tr", TRAINER, "-device", "cpu"]
    # torch.save: 1 epoch 0's checkpoint_latest, 2 its checkpoint_best, 3 epoch 1's checkpoint_latest, cut in half
    killed = faults.run(command, kill={"target": "torch:save", "call": 3, "path_arg": 1})
    assert faults.killed(killed), killed.stderr[-3000:]
    fold = NNUNET_ROOT / "results" / tiny_preprocessed.name / f"{TRAINER}__nnUNetPlans__3d_fullres" / "fold_0"
    assert [p.name for p in fold.glob(".tmp-*checkpoint_latest.pth")], "the kill left a half-written checkpoint"
    assert torch.load(fold / "checkpoint_latest.pth", weights_only=False)["current_epoch"] == 1  # epoch 0's, whole

    run_command(*command, "--c")
    final = torch.load(fold / "checkpoint_final.pth", weights_only=False)
    assert final["current_epoch"] == 3
    assert len(final["logging"]["ema_fg_dice"]) == 3
    resumed = sorted(fold.glob("training_log_*.txt"))[-1].read_text()
    assert "Epoch 1" in resumed and "Epoch 2" in resumed and "Epoch 0" not in resumed  # from epoch 0's checkpoint
    assert not list(fold.glob(".tmp-*")) and not (fold / "checkpoint_latest.pth").exists()
    dataset = json.loads((tiny_preprocessed / "dataset.json").read_text())
    assert final["init_args"]["dataset_json"]["annotated_classes"] == dataset["annotated_classes"]
    summary = json.loads((fold / "validation" / "summary_annotated.json").read_text())
    for case, scores in summary["cases"].items():  # validation scored each case's annotated classes only
        assert set(scores) == set(dataset["annotated_classes"][case])
