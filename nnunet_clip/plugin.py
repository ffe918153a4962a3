"""Where nnU-Net finds this plugin: the trainer folder for ``nnUNet_extTrainer``."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

TRAINER_DIR = Path(__file__).resolve().parent / "trainers"


def use_plugin_trainers() -> None:
    """Add the trainer folder to ``nnUNet_extTrainer`` of this process (for in-process nnU-Net calls)."""
    paths = [p for p in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
    if str(TRAINER_DIR) not in paths:
        os.environ["nnUNet_extTrainer"] = os.pathsep.join([*paths, str(TRAINER_DIR)])


def load_lazy_modules(max_passes: int = 10) -> None:
    """Read ``__file__`` (and ``__path__`` where it is None) of every module in ``sys.modules`` until that
    imports nothing more.

    nnU-Net 2.8's search for an external trainer reads these while iterating ``sys.modules``. A lazily
    loading module (transformers' image processors, imported with open_clip) imports on that read, which
    makes the search fail with 'dictionary changed size during iteration'."""
    for _ in range(max_passes):
        before = set(sys.modules)
        for module in list(sys.modules.values()):
            if module is not None and getattr(module, "__file__", None) is None:
                getattr(module, "__path__", None)
        if set(sys.modules) == before:
            return


def with_plugin_trainers(call: Callable[..., T], *args, **kwargs) -> T:
    """Run an nnU-Net call that finds a trainer class by name (``get_trainer_from_args``, a predictor's
    ``initialize_from_trained_model_folder``) in this process, with the plugin's trainers on its search path."""
    use_plugin_trainers()
    load_lazy_modules()
    return call(*args, **kwargs)


def register(subparsers) -> None:
    p = subparsers.add_parser("trainer-dir", help="print the folder to put in nnUNet_extTrainer",
                              description="Print the folder of the nnunet-clip trainers: "
                                          "export nnUNet_extTrainer=$(nnunet-clip trainer-dir)")
    p.set_defaults(func=lambda args: print(TRAINER_DIR))
