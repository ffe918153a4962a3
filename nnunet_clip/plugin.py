"""Where nnU-Net finds this plugin: the trainer folder for ``nnUNet_extTrainer``."""
from __future__ import annotations

import os
from pathlib import Path

TRAINER_DIR = Path(__file__).resolve().parent / "trainers"


def use_plugin_trainers() -> None:
    """Add the trainer folder to ``nnUNet_extTrainer`` of this process (for in-process nnU-Net calls)."""
    paths = [p for p in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep) if p]
    if str(TRAINER_DIR) not in paths:
        os.environ["nnUNet_extTrainer"] = os.pathsep.join([*paths, str(TRAINER_DIR)])


def register(subparsers) -> None:
    p = subparsers.add_parser("trainer-dir", help="print the folder to put in nnUNet_extTrainer",
                              description="Print the folder of the nnunet-clip trainers: "
                                          "export nnUNet_extTrainer=$(nnunet-clip trainer-dir)")
    p.set_defaults(func=lambda args: print(TRAINER_DIR))
