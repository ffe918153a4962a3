"""Segment CT scans with a trained nnunet-clip model: per-class masks, a label map, statistics, previews.

See docs/prediction.md. A case that fails is reported and skipped; the exit status is 1 if any did.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnunet_clip.devices import torch_device

THRESHOLD = 0.5
"""A voxel belongs to a class where its (fold-averaged) sigmoid probability exceeds this."""
OUTPUT_TYPES = ("nifti", "dicom-seg")


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="segment CT scans with a trained nnunet-clip model",
                              description=__doc__.splitlines()[0])
    p.add_argument("-m", dest="model", required=True, help="trained model folder (the trainer's output folder "
                   "holding fold_X/, plans.json and dataset.json)")
    p.add_argument("-i", dest="input", required=True, help="a NIfTI file, a folder of them (any names) or a "
                   "folder of DICOM series")
    p.add_argument("-o", dest="output", required=True, help="output folder")
    p.add_argument("-f", dest="folds", nargs="+", default=None, help="folds to ensemble (default: all trained "
                   "numbered folds, else all)")
    p.add_argument("--classes", nargs="+", metavar="NAME", help="classes to predict, by name (case-insensitive, "
                   "aliases accepted; untrained names are predicted zero-shot); default: all trained classes")
    p.add_argument("--probabilities", action="store_true", help="also write sigmoid probabilities (uint8, × 255)")
    p.add_argument("--statistics", action="store_true", help="write statistics.json per case")
    p.add_argument("--preview", action="store_true", help="write preview.png per case (axial and coronal overlay)")
    p.add_argument("--no-postprocess", action="store_true", help="write the network's masks as they are")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    p.add_argument("--disable-tta", action="store_true",
                   help="no test-time mirroring, as nnUNetv2_predict's --disable_tta; changes nothing for models that "
                        "allow no mirroring axes, as every nnUNetTrainerCLIP model (its classes have sides)")
    p.add_argument("--step-size", type=float, default=0.5, help="sliding-window step as a fraction of the patch "
                   "size (nnU-Net's -step_size; larger is faster, slightly worse)")
    p.add_argument("-chk", dest="checkpoint", default="checkpoint_final.pth", help="checkpoint file name")
    p.add_argument("--output-type", nargs="+", choices=OUTPUT_TYPES, default=["nifti"],
                   help="nifti: label map and a mask per class (default); dicom-seg: one DICOM SEG per case, for "
                   "DICOM input; both: give both")
    p.add_argument("--num-parts", type=int, default=1, help="split the cases into this many parts, one per process "
                   "(nnU-Net's -num_parts)")
    p.add_argument("--part-id", type=int, default=0, help="the part this process predicts, 0 to --num-parts - 1 "
                   "(nnU-Net's -part_id)")
    p.add_argument("--continue", dest="continue_prediction", action="store_true", help="skip cases whose outputs "
                   "are all written; predict again those a killed run left partial")
    p.set_defaults(func=run)


def load_predictor(args: argparse.Namespace):
    """The predictor of the model folder, folds and device of ``args``, with the requested classes selected."""
    from nnunet_clip.inference.classes import select_classes
    from nnunet_clip.inference.predictor import UniversalPredictor
    from nnunet_clip.vocabulary import Vocabulary

    predictor = UniversalPredictor(tile_step_size=args.step_size, use_mirroring=not args.disable_tta,
                                   device=torch_device(args.device), allow_tqdm=False)
    folds = [f if f == "all" else int(f) for f in args.folds] if args.folds else None
    predictor.initialize_from_trained_model_folder(args.model, folds, args.checkpoint)
    predictor.select(select_classes(args.classes, predictor.model_classes, predictor.text_encoder,
                                    with_helpers=not args.no_postprocess,
                                    vocabulary=Vocabulary.of_dataset(predictor.dataset_json)))
    return predictor


def predict_case(predictor, case, out: Path, args: argparse.Namespace) -> None:
    """Read, predict in the model's orientation, post-process and write one case on its own grid."""
    import numpy as np
    import SimpleITK as sitk
    from tqdm import tqdm

    from nnunet_clip.geometry import Geometry, body_midline_x, not_ct_warning
    from nnunet_clip.inference.outputs import SEG_ENDING, file_name, label_map, map_labels, write_image, write_json
    from nnunet_clip.inference.postprocessing import postprocess
    from nnunet_clip.inference.statistics import case_statistics
    from nnunet_clip.orientation import ModelView
    from nnunet_clip.taxonomy import TUMORS

    image = case.read()
    warning = not_ct_warning(sitk.GetArrayViewFromImage(image))
    if warning:
        tqdm.write(f"warning: {case.source}: {warning}", file=sys.stderr)
    view = ModelView.of(image, predictor.orientation)
    if view.resampled:
        tqdm.write(f"{case.name}: oblique direction; resampled to the model's {predictor.orientation} axes and back",
                   file=sys.stderr)
    requested, vocabulary = predictor.selection.requested, predictor.selection.vocabulary
    folder = out / case.name
    masks, tumour_probabilities = {}, {}
    for name, probabilities in predictor.predict_image(view.image):
        probabilities = view.to_input(probabilities)
        masks[name] = probabilities > THRESHOLD
        if name in requested and (args.probabilities or (args.statistics and name in TUMORS)):
            scaled = np.rint(probabilities.astype(np.float32) * 255).astype(np.uint8)
            if args.probabilities:
                write_image(scaled, image, folder / "probabilities" / file_name(name))
            if args.statistics and name in TUMORS:
                tumour_probabilities[name] = scaled
    array = sitk.GetArrayViewFromImage(image)
    geometry = Geometry.of(image)
    if not args.no_postprocess:
        masks = postprocess(masks, geometry, body_midline_x(array, geometry), vocabulary)
    computed, masks = masks, {name: masks[name] for name in requested}
    nifti = "nifti" in args.output_type
    if nifti:
        for name, mask in masks.items():
            write_image(mask.view(np.uint8), image, folder / file_name(name))
    if args.statistics:
        write_json(case_statistics(masks, array, geometry, computed, tumour_probabilities),
                   folder / "statistics.json")
    if args.preview:
        write_preview(image, masks, folder / "preview.png", case.name)
    if "dicom-seg" in args.output_type:
        from nnunet_clip.inference.dicom_seg import write_dicom_seg

        write_dicom_seg(masks, case.files, out / f"{case.name}{SEG_ENDING}", Path(args.model).name)
    if nifti:  # last: the map marks a complete case
        write_image(label_map(masks, map_labels(requested, vocabulary)), image, out / f"{case.name}.nii.gz")


def write_preview(image, masks: dict, path: Path, title: str) -> None:
    """Axial and coronal overlay, tumours drawn over their organs."""
    from nnunet_clip.inference.outputs import atomic_path, paint_order
    from nnunet_clip.visualization import save_overlay_png

    with atomic_path(path) as tmp:
        save_overlay_png(image, {name: masks[name] for name in paint_order(list(masks))}, tmp, title=title)


def select_cohort_part(cases: list, args: argparse.Namespace) -> list:
    """This process's part of the cases (``--num-parts/--part-id``), said on stderr; checks ``--output-type``."""
    from nnunet_clip.inference.cohort import select_part
    from nnunet_clip.inference.dicom_seg import require_dicom_input

    if "dicom-seg" in args.output_type:
        require_dicom_input(cases)
    part = select_part(cases, args.num_parts, args.part_id)
    if args.num_parts > 1:
        print(f"part {args.part_id} of {args.num_parts} (from 0): {len(part)} of {len(cases)} case(s)"
              + ("; nothing to do" if not part else ""), file=sys.stderr)
    return part


def continue_cohort(cases: list, out: Path, labels: dict, classes: list[str], args: argparse.Namespace) -> list:
    """The cases ``--continue`` predicts: those with an output missing, said on stderr."""
    from nnunet_clip.inference.cohort import check_same_classes, unfinished_cases

    check_same_classes(out, labels)
    unfinished = unfinished_cases(cases, out, classes, args)
    print(f"--continue: {len(cases) - len(unfinished)} of {len(cases)} case(s) complete, skipped", file=sys.stderr)
    return unfinished


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nnunet_clip.atomic import remove_leftovers
    from nnunet_clip.errors import InputError, cannot_write
    from nnunet_clip.inference.inputs import find_cases
    from nnunet_clip.inference.outputs import labels_json, write_json

    cases = select_cohort_part(find_cases(args.input), args)
    if not cases:
        return 0
    predictor = load_predictor(args)
    out = Path(args.output)
    remove_leftovers(out / "labels.json")
    labels = labels_json(predictor.selection.requested, predictor.selection.vocabulary)
    if args.continue_prediction:
        cases = continue_cohort(cases, out, labels, predictor.selection.requested, args)
    write_json(labels, out / "labels.json")
    failed = {}
    for case in tqdm(cases, desc="predict", unit="case", file=sys.stderr):
        remove_leftovers(out / case.name, out / f"{case.name}.nii.gz")  # of a killed run
        try:
            predict_case(predictor, case, out, args)
        except Exception as e:  # one bad case must not stop the others; a full disk stops them all
            if cannot_write(e):
                raise
            failed[case.name] = str(e).splitlines()[0] if isinstance(e, InputError) else \
                f"{type(e).__name__}: {e}".splitlines()[0]
            tqdm.write(f"{case.name}: failed, skipped ({failed[case.name]})", file=sys.stderr)
    print(f"predicted {len(cases) - len(failed)} of {len(cases)} case(s) into {out}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} failed: " + "; ".join(f"{n} ({m})" for n, m in failed.items()), file=sys.stderr)
        return 1
    return 0
