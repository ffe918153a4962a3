"""Fold ensembles average sigmoid probabilities, not logits.

The second fold is fold 0's checkpoint with perturbed weights (cheaper than training a fold 1).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_clip.cli import main
from nnunet_clip.inference.classes import select_classes
from nnunet_clip.inference.predictor import UniversalPredictor


@pytest.fixture(scope="module")
def two_fold_model(trained_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble") / "model"
    shutil.copytree(trained_model.model_folder, folder, ignore=shutil.ignore_patterns("validation"))
    checkpoint = torch.load(folder / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    generator = torch.Generator().manual_seed(0)
    checkpoint["network_weights"] = {
        k: v + 0.5 * v.std() * torch.randn(v.shape, generator=generator) if k.startswith("decoder.stages") and v.numel() > 1 else v
        for k, v in checkpoint["network_weights"].items()}
    (folder / "fold_1").mkdir()
    torch.save(checkpoint, folder / "fold_1" / "checkpoint_final.pth")
    return folder


def test_ensemble_averages_sigmoid_probabilities(two_fold_model, trained_model, tmp_path):
    case = trained_model.raw_folder / "imagesTr" / "liversrc_000_0000.nii.gz"
    predictor = UniversalPredictor(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(two_fold_model), (0, 1))
    predictor.select(select_classes(["liver", "spleen"], predictor.model_classes, None, with_helpers=False))
    data, properties = predictor.preprocess(sitk.ReadImage(str(case)))
    logits = []
    for parameters in predictor.list_of_parameters:
        predictor.universal_network.load_state_dict(parameters)
        logits.append(predictor.predict_sliding_window_return_logits(data).float())
    ensemble = predictor.predict_probabilities(data).float()
    mean_of_sigmoids = (torch.sigmoid(logits[0]) + torch.sigmoid(logits[1])) / 2
    assert torch.allclose(ensemble, mean_of_sigmoids, atol=2e-3)
    assert (ensemble - torch.sigmoid((logits[0] + logits[1]) / 2)).abs().max() > 0.02
    assert (torch.sigmoid(logits[0]) - torch.sigmoid(logits[1])).abs().max() > 0.05, "the folds differ"

    out = tmp_path / "out"
    assert main(["predict", "-m", str(two_fold_model), "-i", str(case), "-o", str(out), "-f", "0", "1",
                 "--classes", "liver", "--probabilities", "--no-postprocess", "--disable-tta"]) == 0
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "liversrc_000" / "probabilities" / "liver.nii.gz")))
    liver = predictor.selection.computed.index("liver")
    expected = predictor.to_input_grid(ensemble[liver].half(), properties).astype(np.float32) * 255
    assert np.abs(written - expected).max() <= 1.5


def test_ensemble_runs_the_window_for_half_the_classes_at_a_time(two_fold_model, trained_model, monkeypatch):
    """Memory: the window's output then covers half the classes; the result is the same as one pass."""
    case = trained_model.raw_folder / "imagesTr" / "liversrc_000_0000.nii.gz"
    predictor = UniversalPredictor(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(two_fold_model), (0, 1))
    predictor.select(select_classes(["liver", "spleen", "liver tumor"], predictor.model_classes, None,
                                    with_helpers=False))
    data, _ = predictor.preprocess(sitk.ReadImage(str(case)))
    one_pass = []
    for parameters in predictor.list_of_parameters:
        predictor.universal_network.load_state_dict(parameters)
        one_pass.append(torch.sigmoid(predictor.predict_sliding_window_return_logits(data).float()))
    window = predictor.predict_sliding_window_return_logits
    classes_per_window = []

    def counting_window(image):
        classes_per_window.append(predictor.label_manager.num_segmentation_heads)
        return window(image)

    monkeypatch.setattr(predictor, "predict_sliding_window_return_logits", counting_window)
    ensemble = predictor.predict_probabilities(data).float()
    assert classes_per_window == [2, 2, 1, 1]
    torch.testing.assert_close(ensemble, (one_pass[0] + one_pass[1]) / 2, atol=2e-3, rtol=0)
    assert predictor.label_manager.num_segmentation_heads == 3  # the selection is restored

    def failing_window(image):  # a case that fails in its second half: the next case sees every class again
        if len(classes_per_window) == 6:
            raise RuntimeError("corrupt case")
        return counting_window(image)

    monkeypatch.setattr(predictor, "predict_sliding_window_return_logits", failing_window)
    selected = predictor.network.index.tolist()
    with pytest.raises(RuntimeError, match="corrupt case"):
        predictor.predict_probabilities(data)
    assert predictor.label_manager.num_segmentation_heads == 3
    assert predictor.network.index.tolist() == selected and len(selected) == 3


def test_classes_some_folds_never_saw_annotated_are_named_per_fold(two_fold_model, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(two_fold_model, folder)
    predictor = UniversalPredictor(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(two_fold_model), (0, 1))
    classes = predictor.model_classes
    for fold, untrained in ((0, ["liver"]), (1, ["liver", "spleen"])):
        path = folder / f"fold_{fold}" / "checkpoint_final.pth"
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        for name in untrained:
            checkpoint["network_weights"]["decoder.seg_layers.class_trained"][classes.index(name)] = False
        torch.save(checkpoint, path)
    predictor.initialize_from_trained_model_folder(str(folder), (0, 1))
    assert predictor.untrained_folds() == {"liver": [0, 1], "spleen": [1]}
    predictor.select(select_classes(["liver", "spleen", "liver tumor"], classes, None, with_helpers=False))
    warnings = capsys.readouterr().err.splitlines()
    assert [w for w in warnings if w.startswith("warning")] == [
        "warning: no training case annotated liver: the model predicts it absent (empty masks)",
        "warning: spleen: fold(s) 1 never saw it annotated and add probability 0 to the ensemble's average"]
