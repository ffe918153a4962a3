"""What the demo's budget reaches without partial labels (docs/demo.md).

Trains ``nnUNetTrainerCLIP`` with the demo's network, patch and iterations on as many phantoms
as the demo trains on, but every class annotated in every case, then scores the demo's held-out
scans. The gap to the demo's result is what partial labels cost at this budget; the gap to
1.0 is what the budget itself costs.

    python benchmarks/fully_labelled.py --out fully_labelled_output [--cases 47] [--epochs E]
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

from phantom_benchmark import run_model

DATASET_ID = 501
TRAINER = "nnUNetTrainerCLIP"
TRAINING_SEED = 0
"""The demo's training phantoms use seeds from 0 too: the same anatomies, fully labelled."""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("fully_labelled_output"))
    p.add_argument("--cases", type=int, default=47, help="training phantoms (the demo's sources have 47)")
    p.add_argument("--heldout", type=int, default=4)
    p.add_argument("--epochs", type=int, help="default: the demo budget's")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    return p.parse_args()


def write_training_set(raw: Path, cases: int) -> None:
    """Fully labelled phantoms as an nnU-Net raw dataset (imagesTr, labelsTr, dataset.json)."""
    from nnunet_clip.synthetic.sources import write_heldout

    write_heldout(raw, cases, seed=TRAINING_SEED)
    (raw / "imagesTs").rename(raw / "imagesTr")
    (raw / "labelsTs").rename(raw / "labelsTr")
    dataset = json.loads((raw / "dataset.json").read_text())
    dataset["numTraining"] = dataset.pop("numTest")
    (raw / "dataset.json").write_text(json.dumps(dataset, indent=1))


def main() -> None:
    args = parse_args()
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    from nnunet_clip.demo import pipeline

    pipeline.use_output_folders(out)
    from nnunet_clip.cli import main as cli_main
    from nnunet_clip.synthetic.sources import write_heldout
    from nnunet_clip.taxonomy import CLASS_NAMES, TUMORS

    budget = pipeline.Budget()
    budget = replace(budget, epochs=args.epochs or budget.epochs, minutes=None)
    write_training_set(out / "nnUNet_raw" / f"Dataset{DATASET_ID}_FullyLabelledPhantoms", args.cases)
    write_heldout(out / "heldout", args.heldout)
    cli_main(["embed", "-d", str(DATASET_ID), "--pretrained", "none"])
    pipeline.plan_and_preprocess(DATASET_ID, budget)
    result = run_model(out, TRAINER, TRAINER, DATASET_ID, set(CLASS_NAMES), budget, args.device)
    organs = [result["dsc"][c] for c in CLASS_NAMES if c not in TUMORS and result["dsc"][c] is not None]
    result = {"budget": budget.as_dict(), "training_cases": args.cases,
              "mean_organ_dsc": sum(organs) / len(organs), **result}
    (out / "fully_labelled.json").write_text(json.dumps(result, indent=1))
    print(f"fully labelled, {args.cases} cases, {budget.epochs} epochs: mean organ DSC "
          f"{result['mean_organ_dsc']:.3f} (train {result['train_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
