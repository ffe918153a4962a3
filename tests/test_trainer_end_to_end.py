"""The user's path through nnU-Net's own commands: plan, embed, train, predict (tiny data, CPU)."""
from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk
import torch

from conftest import run_command
from nnunet_clip.taxonomy import region_class_names
from nnunet_clip.text.embedding_file import EMBEDDING_FILE, TextEmbeddings


def test_training_writes_checkpoint_with_embeddings_and_class_names(trained_model):
    fold = trained_model.model_folder / "fold_0"
    checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    weights = checkpoint["network_weights"]
    class_names = region_class_names(json.loads((trained_model.raw_folder / "dataset.json").read_text())["labels"])
    stored = TextEmbeddings.load(trained_model.raw_folder / EMBEDDING_FILE)
    assert torch.equal(weights["decoder.seg_layers.class_embeddings"], stored.for_classes(class_names))
    assert weights["decoder.seg_layers._extra_state"]["class_names"] == class_names
    assert checkpoint["init_args"]["plans"]["universal_model"]["class_names"] == class_names
    assert (fold / "validation" / "summary.json").is_file()  # nnU-Net's own final validation ran


def test_final_validation_scores_only_annotated_classes(trained_model):
    summary = json.loads((trained_model.model_folder / "fold_0/validation/summary_annotated.json").read_text())
    splits = json.loads((trained_model.preprocessed_folder / "splits_final.json").read_text())
    assert sorted(summary["cases"]) == sorted(splits[0]["val"])
    for case, scores in summary["cases"].items():
        source = "liversrc" if case.startswith("liversrc") else "abdsrc"
        expected = {"liver", "liver tumor"} if source == "liversrc" else {"spleen", "liver", "right kidney",
                                                                         "left kidney"}
        assert set(scores) == expected


def test_nnunet_predict_keeps_input_geometry(trained_model, tmp_path):
    source = next((trained_model.raw_folder / "imagesTr").glob("*_0000.nii.gz"))
    image = sitk.ReadImage(str(source))
    image.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))  # a rotated header must survive too
    image.SetOrigin((12.5, -3.0, 40.0))
    (tmp_path / "in").mkdir()
    sitk.WriteImage(image, str(tmp_path / "in" / "scan_0000.nii.gz"))
    run_command("nnUNetv2_predict", "-d", str(trained_model.dataset_id), "-c", "3d_fullres",
                "-tr", trained_model.trainer, "-f", "0", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                "-device", "cpu", "--disable_tta")
    prediction = sitk.ReadImage(str(tmp_path / "out" / "scan.nii.gz"))
    assert prediction.GetSize() == image.GetSize()
    assert np.allclose(prediction.GetSpacing(), image.GetSpacing())
    assert np.allclose(prediction.GetOrigin(), image.GetOrigin())
    assert np.allclose(prediction.GetDirection(), image.GetDirection())
    labels = json.loads((trained_model.raw_folder / "dataset.json").read_text())["labels"]
    allowed = {0} | {v for value in labels.values() for v in (value if isinstance(value, list) else [value])}
    assert set(np.unique(sitk.GetArrayViewFromImage(prediction)).tolist()) <= allowed
