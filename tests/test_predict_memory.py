"""The sliding window's inf check, run class by class by ``nnunet-clip predict``: same answer, same error."""
from __future__ import annotations

import torch

from nnunet_clip.cli import main
from nnunet_clip.inference import rowwise
from nnunet_clip.inference.rowwise import RowWiseIsinf
from nnunet_clip.network.universal_unet import UniversalUNet


def predict(model, out, *options) -> int:
    case = model.raw_folder / "imagesTr" / "abdsrc_000_0000.nii.gz"
    return main(["predict", "-m", str(model.model_folder), "-i", str(case), "-o", str(out),
                 "--disable-tta", "--device", "cpu", *options])


def test_rowwise_isinf_equals_torch_isinf():
    x = torch.randn(4, 5, 6).half()
    x[3, 4, 5], x[0, 0, 0], x[1, 2, 3], x[2, 1, 1] = float("inf"), float("-inf"), float("nan"), 65504
    with torch.inference_mode(), RowWiseIsinf():
        rows = torch.isinf(x)
        scalar = torch.isinf(torch.tensor(float("inf")))
        vector = torch.isinf(x[3, 4])
    assert torch.equal(rows, torch.isinf(x)) and rows.sum() == 2
    assert scalar and torch.equal(vector, torch.isinf(x[3, 4]))


def test_predict_checks_the_window_for_inf_class_by_class(trained_model, tmp_path, monkeypatch):
    checked = []
    isinf = rowwise.rowwise_isinf
    monkeypatch.setattr(rowwise, "rowwise_isinf", lambda x: checked.append(x.shape[0]) or isinf(x))
    assert predict(trained_model, tmp_path, "--classes", "liver", "spleen") == 0
    assert checked == [2]


def test_inf_logits_still_fail_the_case_with_nnunets_error(trained_model, tmp_path, monkeypatch, capsys):
    forward = UniversalUNet.forward
    monkeypatch.setattr(UniversalUNet, "forward",
                        lambda self, x, e=None, t=None, o=None: torch.full_like(forward(self, x, e, t, o), float("inf")))
    assert predict(trained_model, tmp_path, "--classes", "liver") == 1
    assert "Encountered inf in predicted array" in capsys.readouterr().err
