"""One seed for a whole training: initialisation, case and patch sampling, augmentation.

``nnUNet_clip_seed`` (an integer) seeds Python's, NumPy's and PyTorch's global generators when an
nnunet-clip trainer initialises; nnU-Net's data loader and batchgeneratorsv2's transforms draw from
them. With ``nnUNet_n_proc_DA=0`` (augmentation in the training process) a CPU training is then
repeatable to the last bit. Augmentation worker processes keep their own, unseeded generators.
Unset: nothing is seeded, as in nnU-Net.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from nnunet_clip.errors import InputError

SEED_VARIABLE = "nnUNet_clip_seed"


def training_seed() -> int | None:
    """The seed set in ``nnUNet_clip_seed``, or None; InputError if it is not an integer."""
    value = os.environ.get(SEED_VARIABLE, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{SEED_VARIABLE}={value!r}: expected an integer") from None


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global random number generators."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
