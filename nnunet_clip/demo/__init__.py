"""``nnunet-clip demo``: the whole path on built-in synthetic data (see docs/demo.md)."""
from __future__ import annotations


def register(subparsers) -> None:
    from nnunet_clip.demo.command import add_parser

    add_parser(subparsers)
