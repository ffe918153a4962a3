"""Shared test setup: nnU-Net's folders in a temporary directory, and one small trained model.

nnU-Net reads its folder variables when ``nnunetv2.paths`` is first imported, so they are set
here, before any test imports nnU-Net. Subprocesses inherit them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from nnunet_clip.plugin import TRAINER_DIR

NNUNET_ROOT = Path(tempfile.mkdtemp(prefix="nnunet_clip_tests_"))
os.environ.update({
    "nnUNet_raw": str(NNUNET_ROOT / "raw"),
    "nnUNet_preprocessed": str(NNUNET_ROOT / "preprocessed"),
    "nnUNet_results": str(NNUNET_ROOT / "results"),
    "nnUNet_extTrainer": str(TRAINER_DIR),
    "nnUNet_def_n_proc": "1",   # 2 cores: nnU-Net's default worker pools only add overhead
    "nnUNet_n_proc_DA": "1",
    "HF_HUB_OFFLINE": "1",      # no internet: fail fast instead of retrying downloads
})

def make_trainer(preprocessed: Path, trainer_class=None, dataset_json: dict | None = None,
                 configuration: str = "3d_fullres", **plans_entries):
    """A trainer (default nnUNetTrainerCLIP) on the CPU for fold 0 of a preprocessed dataset's nnUNetPlans."""
    import torch

    from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP

    plans = {**json.loads((preprocessed / "nnUNetPlans.json").read_text()), "continue_training": False,
             **plans_entries}
    dataset_json = dataset_json or json.loads((preprocessed / "dataset.json").read_text())
    return (trainer_class or nnUNetTrainerCLIP)(plans, configuration, 0, dataset_json, device=torch.device("cpu"))


TINY_DATASET_ID = 991
TINY_FEATURES = (8, 16, 32, 32)
"""Network width per stage of the tests' plans: small enough for a CPU training epoch in seconds."""


def run_command(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run an installed console command; fail the test with its output if it fails."""
    bin_dir = Path(sys.executable).parent
    result = subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True,
                            encoding="utf-8", errors="replace", cwd=cwd)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def shrink_plans(plans_file: Path, configuration: str = "3d_fullres") -> None:
    """Cut the planned network to at most ``len(TINY_FEATURES)`` narrow stages (preprocessing is unaffected)."""
    plans = json.loads(plans_file.read_text())
    config = plans["configurations"][configuration]
    kwargs = config["architecture"]["arch_kwargs"]
    n = min(kwargs["n_stages"], len(TINY_FEATURES))
    kwargs["n_stages"] = n
    kwargs["features_per_stage"] = list(TINY_FEATURES[:n])
    for key in ("kernel_sizes", "strides", "n_conv_per_stage", "n_blocks_per_stage"):
        if key in kwargs:
            kwargs[key] = kwargs[key][:n]
    if "n_conv_per_stage_decoder" in kwargs:
        kwargs["n_conv_per_stage_decoder"] = kwargs["n_conv_per_stage_decoder"][:n - 1]
    config["batch_size"] = 2
    plans_file.write_text(json.dumps(plans, indent=1))


@dataclass
class TrainedModel:
    """A Universal Model trained for one short epoch on the tiny dataset, through the real commands."""

    dataset_id: int
    raw_folder: Path
    preprocessed_folder: Path
    model_folder: Path
    trainer: str
    train_log: str


@pytest.fixture(scope="session")
def tiny_preprocessed() -> Path:
    """The tiny partial-label dataset, planned and preprocessed by nnU-Net, with shrunken plans and embeddings."""
    from tiny_dataset import write_tiny_dataset

    raw = write_tiny_dataset(NNUNET_ROOT / "raw", TINY_DATASET_ID)
    run_command("nnUNetv2_plan_and_preprocess", "-d", str(TINY_DATASET_ID), "-c", "3d_fullres",
                "-np", "1", "-npfp", "1", "--verify_dataset_integrity")
    preprocessed = NNUNET_ROOT / "preprocessed" / raw.name
    shrink_plans(preprocessed / "nnUNetPlans.json")
    run_command("nnunet-clip", "embed", "-d", str(TINY_DATASET_ID), "--pretrained", "none")
    return preprocessed


@pytest.fixture(scope="session")
def trained_model(tiny_preprocessed: Path) -> TrainedModel:
    """``nnUNetv2_train 991 3d_fullres 0 -tr nnUNetTrainerCLIP_1epoch -device cpu``, final validation included."""
    trainer = "nnUNetTrainerCLIP_1epoch"
    result = run_command("nnUNetv2_train", str(TINY_DATASET_ID), "3d_fullres", "0", "-tr", trainer,
                         "-device", "cpu")
    name = tiny_preprocessed.name
    return TrainedModel(TINY_DATASET_ID, NNUNET_ROOT / "raw" / name, tiny_preprocessed,
                        NNUNET_ROOT / "results" / name / f"{trainer}__nnUNetPlans__3d_fullres", trainer,
                        result.stdout)
