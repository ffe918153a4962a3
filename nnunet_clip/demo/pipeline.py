"""The demo's nnU-Net steps, in-process: plan and preprocess with a small network, train on a
fixed budget, predict a folder.

Nothing here changes nnU-Net's behaviour beyond what a user can set: a plans file with a smaller
network and patch (its own plans identifier, sharing nnU-Net's preprocessed data), and the
trainer's epoch and iteration counts.
"""
from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from nnunet_clip.demo.schedule import IterationSchedule, ListedIterations
from nnunet_clip.devices import torch_device
from nnunet_clip.network.build import PLANS_KEY

PLANS = "nnUNetDemoPlans"
CONFIGURATION = "3d_fullres"
FOLD = "all"


@dataclass(frozen=True)
class Budget:
    """How much network and training the demo affords."""

    epochs: int = 144
    iterations_per_epoch: int = 16
    """Of the first epoch; of every epoch when ``minutes`` is None."""
    minutes: float | None = 9.0
    """The demo's wall time (without --compare) that training fits its iterations into, epoch by epoch
    (``schedule.DeadlineIterations``); None: ``iterations_per_epoch`` in every epoch."""
    learning_rate: float = 2e-3
    val_iterations: int = 1
    features: tuple[int, ...] = (16, 16, 32, 64)
    head_in_channels: int = 16
    patch_size: tuple[int, int, int] = (24, 32, 40)
    batch_size: int = 2

    def as_dict(self) -> dict:
        return asdict(self)


GPU = Budget(epochs=288, iterations_per_epoch=32)
"""The default on a GPU: more epochs, the first of more iterations; the iterations are then fitted to the
minutes, as on the CPU (an H100 trained 27 per second, the 2-core CPU 5 to 7)."""

QUICK = Budget(epochs=2, iterations_per_epoch=2, minutes=None, val_iterations=1, features=(4, 8, 16),
               head_in_channels=4, patch_size=(24, 32, 32))
"""Enough to run every step (the tests' setting), not to learn."""


def default_budget(device_type: str) -> Budget:
    """The demo's budget on a device type: ``GPU`` on ``cuda``, the CPU-sized ``Budget()`` elsewhere."""
    return GPU if device_type == "cuda" else Budget()


def use_output_folders(out: Path, training_device: str = "cpu") -> None:
    """nnU-Net's raw, preprocessed and results folders inside ``out``. Unless the user chose otherwise,
    one preprocessing process and, when training on the CPU, data augmentation in the training
    process (workers would compete with its threads); a GPU gets nnU-Net's augmentation workers.
    Call before anything imports ``nnunetv2.paths``."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[name] = str(out / name)
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    if training_device == "cpu":
        os.environ.setdefault("nnUNet_n_proc_DA", "0")


def _strides(patch_size: tuple[int, ...], stages: int) -> tuple[list[list[int]], list[int]]:
    """Pooling strides per stage (2 while an axis stays at least 4 voxels) and the patch size
    rounded up to a multiple of the total stride."""
    size, strides = list(patch_size), [[1] * len(patch_size)]
    for _ in range(stages - 1):
        stride = [2 if s >= 8 else 1 for s in size]
        strides.append(stride)
        size = [s // st for s, st in zip(size, stride)]
    total = [math.prod(s[a] for s in strides) for a in range(len(patch_size))]
    return strides, [-(-p // t) * t for p, t in zip(patch_size, total)]


def demo_architecture(budget: Budget) -> tuple[dict, list[int]]:
    """The budget's network (PlainConvUNet keyword arguments that replace the planned ones) and patch size."""
    stages = len(budget.features)
    strides, patch = _strides(budget.patch_size, stages)
    return dict(n_stages=stages, features_per_stage=list(budget.features), strides=strides,
                kernel_sizes=[[3, 3, 3]] * stages, n_conv_per_stage=[2] * stages,
                n_conv_per_stage_decoder=[2] * (stages - 1)), patch


def small_plans(plans: dict, budget: Budget) -> dict:
    """nnU-Net's plans with the budget's network width, depth, heads' input width, patch and batch size
    for 3d_fullres."""
    plans = json.loads(json.dumps(plans))
    plans["plans_name"] = PLANS
    config = plans["configurations"][CONFIGURATION]
    architecture, patch = demo_architecture(budget)
    config["architecture"]["arch_kwargs"].update(architecture)
    config.update(patch_size=patch, batch_size=budget.batch_size)
    plans["configurations"] = {CONFIGURATION: config}
    plans[PLANS_KEY] = {"head_in_channels": budget.head_in_channels}
    return plans


@contextmanager
def positive_da_processes():
    """nnU-Net's planner sets torch's thread count to ``nnUNet_n_proc_DA``, so it must not be 0 there."""
    value = os.environ.get("nnUNet_n_proc_DA")
    if value == "0":
        os.environ["nnUNet_n_proc_DA"] = "1"
    try:
        yield
    finally:
        if value is not None:
            os.environ["nnUNet_n_proc_DA"] = value


def plan_and_preprocess(dataset_id: int, budget: Budget, num_processes: int = 1) -> Path:
    """nnU-Net's fingerprint, plans and 3d_fullres preprocessing, then the demo plans; returns the
    preprocessed dataset folder."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                        preprocess)
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

    extract_fingerprints([dataset_id], num_processes=num_processes, check_dataset_integrity=True)
    with positive_da_processes():
        plan_experiments([dataset_id])
    preprocess([dataset_id], configurations=(CONFIGURATION,), num_processes=(num_processes,))
    folder = Path(nnUNet_preprocessed.get(), convert_id_to_dataset_name(dataset_id))
    plans = json.loads((folder / "nnUNetPlans.json").read_text())
    (folder / f"{PLANS}.json").write_text(json.dumps(small_plans(plans, budget), indent=1))
    return folder


def fixed_iterations(budget: Budget) -> ListedIterations:
    """The budget's ``iterations_per_epoch`` in each of its epochs."""
    return ListedIterations([budget.iterations_per_epoch] * budget.epochs)


def train(dataset_id: int, trainer_name: str, budget: Budget, device_name: str = "auto",
          schedule: IterationSchedule | None = None, pretrained_weights: Path | None = None) -> Path:
    """Train ``trainer_name`` (fold ``all``) for the budget's epochs, each of as many iterations as
    ``schedule`` chooses (default: ``fixed_iterations``), from ``pretrained_weights`` if given (as
    ``nnUNetv2_train -pretrained_weights``); returns the model folder (``nnUNetv2_predict``'s
    ``-tr … -p nnUNetDemoPlans -f all`` finds it too)."""
    from nnunetv2.run.run_training import get_trainer_from_args, maybe_load_checkpoint

    from nnunet_clip.plugin import with_plugin_trainers

    trainer = with_plugin_trainers(get_trainer_from_args, str(dataset_id), CONFIGURATION, FOLD, trainer_name,
                                   PLANS, device=torch_device(device_name))
    trainer.num_epochs = budget.epochs
    trainer.num_iterations_per_epoch = budget.iterations_per_epoch
    trainer.num_val_iterations_per_epoch = budget.val_iterations
    trainer.initial_lr = budget.learning_rate
    if pretrained_weights is None:
        trainer.initialize()
    else:  # what nnUNetv2_train -pretrained_weights runs: initialize, then nnU-Net's loader
        trainer.pretrained_weights = str(pretrained_weights)
        maybe_load_checkpoint(trainer, False, False, trainer.pretrained_weights)
    (schedule or fixed_iterations(budget)).attach(trainer)
    trainer.run_training()
    return Path(trainer.output_folder_base)


def trained_model_folder(dataset_id: int, trainer_name: str) -> Path:
    """Where ``train`` puts ``trainer_name``'s model of the dataset (its ``fold_all`` inside)."""
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    return Path(get_output_folder(dataset_id, trainer_name, PLANS, CONFIGURATION))


def predict(model_folder: Path, input_folder: Path, output_folder: Path, device_name: str = "auto") -> Path:
    """nnU-Net's predictor (sliding window, no mirroring) on every image of ``input_folder``."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from nnunet_clip.plugin import with_plugin_trainers

    predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=False, device=torch_device(device_name),
                                allow_tqdm=True)
    with_plugin_trainers(predictor.initialize_from_trained_model_folder, str(model_folder), use_folds=(FOLD,))
    output_folder.mkdir(parents=True, exist_ok=True)
    predictor.predict_from_files_sequential(str(input_folder), str(output_folder), overwrite=True)
    return output_folder
