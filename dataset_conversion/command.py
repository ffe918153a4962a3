"""``nnunet-clip convert``: add one source dataset's cases to the universal nnU-Net raw dataset."""
from __future__ import annotations

import argparse
from pathlib import Path

from nnunet_clip.errors import InputError


def register(subparsers) -> None:
    """Add the ``convert`` sub-command."""
    from dataset_conversion.registry import SOURCES

    p = subparsers.add_parser(
        "convert", help="add one source dataset to the universal nnU-Net raw dataset",
        description="Add the cases of one source dataset (as unpacked from its official download) "
                    "to $nnUNet_raw/DatasetXXX_NAME, created on the first call. One call per source; "
                    "repeating a call changes nothing. See docs/datasets.md.")
    p.add_argument("source", nargs="?", choices=list(SOURCES), metavar="SOURCE",
                   help="source dataset (see --list)")
    p.add_argument("input_dir", nargs="?", type=Path, metavar="INPUT_DIR",
                   help="folder the official download unpacks to")
    p.add_argument("-d", "--dataset-id", type=int, help="nnU-Net dataset id")
    p.add_argument("--name", default="Universal", help="dataset name for a new dataset (default: Universal)")
    p.add_argument("--list", action="store_true", help="list the sources and what they annotate")
    p.add_argument("--kits-aggregation", choices=("majority", "or"), default="majority",
                   help="kits21: aggregated_MAJ_seg (default, the official ground truth) or "
                        "aggregated_OR_seg (what CLIP used)")
    p.add_argument("--gibson", type=Path, default=None,
                   help="btcv, pancreas-ct: folder with Gibson's label_btcv_multiorgan / "
                        "label_tcia_multiorgan labels if not below INPUT_DIR")
    p.add_argument("--amos-meta", type=Path, default=None,
                   help="amos22: metadata CSV with the patients' sex if not in/beside INPUT_DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``convert`` (or ``convert --list``)."""
    from dataset_conversion.convert import convert, list_sources
    from dataset_conversion.source import Options

    if args.list:
        print(list_sources())
        return 0
    if args.source is None or args.input_dir is None or args.dataset_id is None:
        raise InputError("give SOURCE INPUT_DIR -d DATASET_ID, or --list")
    options = Options(args.kits_aggregation, args.gibson, args.amos_meta)
    convert(args.source, args.input_dir, args.dataset_id, args.name, options)
    return 0
