"""The torch device of a command's ``--device`` option, set up as nnU-Net's own commands set it up."""
from __future__ import annotations

import os

from nnunet_clip.errors import InputError


def torch_device(name: str | None = None):
    """``cuda`` when available for ``None`` or ``"auto"``, else ``cpu``. Torch's threads as in
    ``nnUNetv2_train`` and ``nnUNetv2_predict``: every core on the CPU, one beside a GPU."""
    import torch

    if name in (None, "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device available")
    torch.set_num_threads((os.cpu_count() or 1) if name == "cpu" else 1)
    return torch.device(name)
