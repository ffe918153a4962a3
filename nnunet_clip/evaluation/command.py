"""``nnunet-clip evaluate``: DSC, NSD and tumour detection (per case, per lesion, ROC) of predicted label maps."""
from __future__ import annotations

import argparse
from pathlib import Path

from nnunet_clip.errors import InputError
from nnunet_clip.evaluation.detection import DEFAULT_MIN_TUMOR_ML
from nnunet_clip.taxonomy import TUMORS


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="score predictions against partially labelled references",
                              description=__doc__)
    p.add_argument("-r", "--reference", required=True, type=Path, metavar="REF_DIR",
                   help="folder of reference label maps (e.g. labelsTr)")
    p.add_argument("-p", "--prediction", required=True, type=Path, metavar="PRED_DIR",
                   help="folder of predicted label maps; its labels.json, if any, names their values")
    p.add_argument("--dataset-json", type=Path,
                   help="dataset.json with 'labels' and 'annotated_classes' (default: REF_DIR/../dataset.json, "
                        "else PRED_DIR/dataset.json)")
    p.add_argument("-o", "--output", type=Path,
                   help="metrics JSON; the CSV and the box plot PNG go next to it (default: PRED_DIR/metrics.json)")
    p.add_argument("--tolerance", action="append", default=[], metavar="NAME=MM",
                   help="NSD tolerance of a class in mm, over the defaults (repeatable)")
    p.add_argument("--min-tumor-ml", type=float, default=DEFAULT_MIN_TUMOR_ML,
                   help="a predicted tumour component counts as a lesion, and makes its case tumour-positive, when "
                        "it is larger (default: %(default)s ml)")
    p.add_argument("--missing-as-empty", action="store_true",
                   help="score a reference case without prediction as an empty prediction instead of stopping")
    p.add_argument("-np", "--num-processes", type=int, default=1, help="worker processes (default: %(default)s)")
    p.set_defaults(func=run)


def find_dataset_json(args: argparse.Namespace) -> Path:
    """--dataset-json, else the dataset.json beside REF_DIR, else the one in PRED_DIR."""
    if args.dataset_json is not None:
        return args.dataset_json
    candidates = [args.reference.resolve().parent / "dataset.json", args.prediction / "dataset.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputError(f"{args.reference}: no dataset.json at {' or '.join(map(str, candidates))}; "
                     "pass --dataset-json")


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def run(args: argparse.Namespace) -> None:
    from nnunet_clip.evaluation.evaluate_folder import evaluate_folders
    from nnunet_clip.evaluation.report import write_outputs
    from nnunet_clip.evaluation.tolerances import parse_tolerances

    if args.min_tumor_ml < 0:
        raise InputError(f"--min-tumor-ml {args.min_tumor_ml}: must be >= 0")
    metrics = evaluate_folders(args.reference, args.prediction, find_dataset_json(args),
                               tolerances=parse_tolerances(args.tolerance), min_tumor_ml=args.min_tumor_ml,
                               missing_as_empty=args.missing_as_empty, num_processes=args.num_processes)
    print(f"{len(metrics['cases'])} cases; mean organ DSC {_fmt(metrics['mean_organ_dsc'])}, "
          f"NSD {_fmt(metrics['mean_organ_nsd'])}")
    for name, d in metrics["tumor_detection"].items():
        lesions = d["lesion_level"]
        print(f"  {name}: sensitivity {_fmt(d['sensitivity'])}, specificity {_fmt(d['specificity'])}, "
              f"harmonic mean {_fmt(d['harmonic_mean'])} (TP {d['tp']} FN {d['fn']} TN {d['tn']} FP {d['fp']}); "
              f"lesion recall {_fmt(lesions['recall'])} ({lesions['detected']}/{lesions['lesions']}), "
              f"false-positive lesions per case {_fmt(lesions['false_positives_per_case'])}; "
              f"AUC {_fmt(d['roc']['auc'])} ({d['roc']['presence_score']})")
    for name in (n for n in metrics["classes_not_in_prediction"] if n in TUMORS):
        print(f"  {name}: not predicted")
    for path in write_outputs(metrics, args.output or args.prediction / "metrics.json"):
        print(f"wrote {path}")
