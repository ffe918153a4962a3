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
        description="Add the cases of one source dataset (as unpacked from its official download, an nnU-Net raw "
                    "dataset, or one folder per case with a mask file per class) to $nnUNet_raw/DatasetXXX_NAME, "
                    "created on the first call. One call per source; repeating a call changes nothing, and an "
                    "interrupted call repeated finishes the job. See docs/datasets.md.")
    p.add_argument("source", nargs="?", choices=list(SOURCES), metavar="SOURCE",
                   help="source dataset (see --list)")
    p.add_argument("input_dir", nargs="?", type=Path, metavar="INPUT_DIR",
                   help="folder the official download unpacks to (nnunet: the DatasetXXX_Name folder)")
    p.add_argument("-d", "--dataset-id", type=int, help="nnU-Net dataset id")
    p.add_argument("--name", default="Universal", help="dataset name for a new dataset (default: Universal)")
    p.add_argument("-np", "--processes", type=int, default=1,
                   help="cases converted in parallel, one process each (default: 1)")
    p.add_argument("--list", action="store_true", help="list the sources and what they annotate")
    p.add_argument("--kits-aggregation", choices=("majority", "or"), default="majority",
                   help="kits21: aggregated_MAJ_seg (default, the official ground truth) or "
                        "aggregated_OR_seg (what CLIP used)")
    p.add_argument("--gibson", type=Path, default=None,
                   help="btcv, pancreas-ct: folder with Gibson's label_btcv_multiorgan / "
                        "label_tcia_multiorgan labels if not below INPUT_DIR")
    p.add_argument("--amos-meta", type=Path, default=None,
                   help="amos22: metadata CSV with the patients' sex if not in/beside INPUT_DIR")
    p.add_argument("--classes", choices=("universal", "all"), default="universal",
                   help="totalsegmentator: the structures of the universal classes (default) or all of them")
    p.add_argument("--rename", nargs="+", action="extend", default=[], metavar="OLD=NEW",
                   help="nnunet, per-class-files, abdomenatlas: use class name NEW for the source's OLD")
    p.add_argument("--parent", nargs="+", action="extend", default=[], metavar="CLASS=PARENT",
                   help="a class the source adds lies inside PARENT (repeat for each of several parents)")
    p.add_argument("--side", nargs="+", action="extend", default=[], metavar="CLASS=right|left|none",
                   help="the side of a class the source adds (default: the word right or left in its name)")
    p.add_argument("--image", default="ct.nii.gz",
                   help="per-class-files: the file name of each case's image (default: ct.nii.gz)")
    p.add_argument("--source-name",
                   help="nnunet, per-class-files: the source's name in case ids (default: from INPUT_DIR's name)")
    p.set_defaults(func=run)


def pairs(items: list[str], option: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` items as (name, value); a one-line error for a malformed one."""
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InputError(f"{option} {item}: expected NAME=VALUE")
        out.append((name.strip(), value.strip()))
    return out


def options_of(args: argparse.Namespace):
    """The ``Options`` of the parsed arguments."""
    from dataset_conversion.source import Options
    from nnunet_clip.taxonomy import SIDE_WORDS, canonical_name, normalise

    parents: dict[str, tuple[str, ...]] = {}
    for child, parent in pairs(args.parent, "--parent"):
        parents[canonical_name(child)] = (*parents.get(canonical_name(child), ()), canonical_name(parent))
    sides = {}
    for name, side in pairs(args.side, "--side"):
        if side.lower() not in (*SIDE_WORDS, "none"):
            raise InputError(f"--side {name}={side}: the side is one of {', '.join(SIDE_WORDS)}, none")
        sides[canonical_name(name)] = None if side.lower() == "none" else side.lower()
    return Options(args.kits_aggregation, args.gibson, args.amos_meta, args.classes,
                   {normalise(old): new for old, new in pairs(args.rename, "--rename")}, parents, sides,
                   args.image, args.source_name)


def run(args: argparse.Namespace) -> int:
    """Run ``convert`` (or ``convert --list``)."""
    from dataset_conversion.convert import convert, list_sources

    if args.list:
        print(list_sources())
        return 0
    if args.source is None or args.input_dir is None or args.dataset_id is None:
        raise InputError("give SOURCE INPUT_DIR -d DATASET_ID, or --list")
    if args.processes < 1:
        raise InputError(f"-np {args.processes}: give a number of processes of 1 or more")
    convert(args.source, args.input_dir, args.dataset_id, args.name, options_of(args), args.processes)
    return 0
