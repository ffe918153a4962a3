"""The ``nnunet-clip`` command: what nnU-Net's own commands do not cover.

Each sub-command lives in the module that does its job; that module's ``register(subparsers)``
adds its parser and sets ``func``. Heavy imports (torch, nnU-Net) happen inside ``func``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from nnunet_clip.errors import InputError, cannot_write, one_line

COMMAND_MODULES = (
    "dataset_conversion.command",
    "nnunet_clip.text.command",
    "nnunet_clip.plugin",
    "nnunet_clip.inference.command",
    "nnunet_clip.evaluation.command",
    "nnunet_clip.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnunet-clip", description="CLIP-Driven Universal Model on nnU-Net v2: what nnU-Net's own commands "
                                        "(nnUNetv2_plan_and_preprocess, nnUNetv2_train, nnUNetv2_predict) do not cover.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _quiet_third_party_warnings() -> None:
    """timm, which nnU-Net imports, uses a deprecated torch decorator at import: not the user's concern."""
    warnings.filterwarnings("ignore", message="`torch.jit.interface` is deprecated", category=FutureWarning)


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command; bad input exits 2 and a write the machine refuses (full disk, read-only
    folder) exits 1, each with one line naming the file."""
    args = build_parser().parse_args(argv)
    _quiet_third_party_warnings()
    try:
        status = args.func(args)
    except InputError as e:
        print(f"nnunet-clip {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if not cannot_write(e):
            raise
        print(f"nnunet-clip {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 1
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
