"""The whole-body path on tiny synthetic data: TotalSegmentator's layout with all its classes is
converted, embedded, planned, trained for one short epoch and predicted by name (CPU, in-process)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from conftest import NNUNET_ROOT, make_trainer, shrink_plans
from dataset_conversion.convert import convert
from dataset_conversion.source import Options
from nnunet_clip.cli import main as nnunet_clip
from nnunet_clip.synthetic.layouts import SourceCase, write_source
from tiny_dataset import SHAPE, SPACING, _ball, ct_image, organ_masks

DATASET_ID = 993
OUTSIDE_THE_ABDOMEN = {  # TotalSegmentator files of classes outside the universal ones: (centre, radius)
    "heart": ((15, 8, 14), 3), "vertebrae_L1": ((10, 24, 14), 2),
    "rib_right_1": ((14, 14, 2), 1), "rib_left_1": ((14, 14, 25), 1),
}


def subject(number: int, rng: np.random.Generator) -> SourceCase:
    masks = organ_masks(rng)
    array = ct_image(rng, masks)
    extra = {name: _ball(SHAPE, centre, radius) for name, (centre, radius) in OUTSIDE_THE_ABDOMEN.items()}
    for value, mask in enumerate(extra.values()):
        array[mask] = 300 + 200 * value
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin((-20.0, -20.0, 0.0))
    return SourceCase(number, image, masks, {"extra_files": extra})


def train_in_process(dataset_id: int, name: str, iterations: int = 2):
    """Plan and preprocess with nnU-Net (shrunken plans), embed, and train one epoch of ``iterations``."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess

    from nnunet_clip.trainers.nnUNetTrainerCLIP_Xepochs import nnUNetTrainerCLIP_1epoch

    extract_fingerprints([dataset_id], num_processes=1, check_dataset_integrity=True, show_progress_bar=False)
    plan_experiments([dataset_id])
    preprocess([dataset_id], configurations=("3d_fullres",), num_processes=(1,), show_progress_bar=False)
    preprocessed = NNUNET_ROOT / "preprocessed" / name
    shrink_plans(preprocessed / "nnUNetPlans.json")
    assert nnunet_clip(["embed", "-d", str(dataset_id), "--pretrained", "none"]) == 0
    trainer = make_trainer(preprocessed, nnUNetTrainerCLIP_1epoch)
    trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch = iterations, 1
    trainer.run_training()
    return trainer


def test_totalsegmentator_with_all_classes_trains_and_predicts_new_classes_by_name(tmp_path):
    rng = np.random.default_rng(0)
    root = write_source("totalsegmentator", tmp_path / "ts", [subject(n, rng) for n in range(1, 6)])
    raw = convert("totalsegmentator", root, DATASET_ID, name="WholeBody", options=Options(classes="all"))
    trainer = train_in_process(DATASET_ID, raw.name)
    assert {"heart", "vertebrae l1", "rib left 1", "lung upper lobe right"} <= set(trainer.class_names)
    trained = dict(zip(trainer.class_names, trainer.network.class_trained.tolist()))
    assert trained["heart"] and trained["rib right 1"] and not trained["liver tumor"]

    scan = tmp_path / "scan.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(raw / "imagesTr/totalsegmentator_s0001_0000.nii.gz")), str(scan))
    out = tmp_path / "out"
    assert nnunet_clip(["predict", "-m", str(trainer.output_folder_base), "-f", "0", "-i", str(scan), "-o", str(out),
                        "--classes", "Heart", "vertebrae_L1", "rib_left_1", "IVC", "--device", "cpu"]) == 0
    labels = json.loads((out / "labels.json").read_text())
    assert labels["files"] == {"heart": "heart.nii.gz", "vertebrae l1": "vertebrae_l1.nii.gz",
                               "rib left 1": "rib_left_1.nii.gz", "postcava": "postcava.nii.gz"}
    for file in labels["files"].values():
        mask = sitk.ReadImage(str(out / "scan" / file))
        assert mask.GetSize() == SHAPE[::-1] and mask.GetSpacing() == SPACING
    checkpoint = torch.load(trainer.output_folder + "/checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["init_args"]["dataset_json"]["added_classes"]["rib left 1"] == {"side": "left"}


def test_a_plain_integer_label_dataset_trains_with_one_sigmoid_output_per_class(tmp_path):
    """nnU-Net's own kind of dataset, not converted: integer labels, no annotated_classes."""
    rng = np.random.default_rng(1)
    cases = [subject(n, rng) for n in range(1, 6)]
    for case in cases:
        case.masks = {"Liver": case.masks["liver"], "kidney_right": case.masks["right kidney"],
                      "heart": case.meta["extra_files"]["heart"]}
    raw = write_source("nnunet", tmp_path / "plain", cases).rename(tmp_path / "plain/Dataset994_Plain")
    (NNUNET_ROOT / "raw").mkdir(exist_ok=True)
    raw = raw.rename(NNUNET_ROOT / "raw" / raw.name)
    trainer = train_in_process(994, raw.name, iterations=1)
    assert trainer.class_names == ["liver", "right kidney", "heart"]
    assert trainer.network.class_trained.all()
    saved = json.loads(Path(trainer.output_folder_base, "dataset.json").read_text())
    assert saved["labels"] == {"background": 0, "Liver": [1, 1], "kidney_right": [2, 2], "heart": [3, 3]}
    logits = torch.full((3, 2, 2, 2), -5.0)
    logits[2, 0, 0, 0] = logits[0, 1, 1, 1] = 5.0
    segmentation = trainer.label_manager.convert_logits_to_segmentation(logits)
    assert segmentation[0, 0, 0] == 3 and segmentation[1, 1, 1] == 1 and segmentation.sum() == 4  # the dataset's values
