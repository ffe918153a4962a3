"""``nnunet-clip predict`` on the tests' trained model: geometry, outputs, class selection, inputs, failures."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_clip.cli import main
from nnunet_clip.inference.outputs import file_name
from nnunet_clip.network.universal_unet import UniversalUNet
from nnunet_clip.taxonomy import PARENTS, SIDED_PAIRS, TUMORS, dataset_labels

REAL_CT = Path(__file__).resolve().parent / "data" / "example_ct_sm.nii.gz"
FAST = ["--disable-tta", "--device", "cpu"]


def predict(model, source, out, *options) -> int:
    return main(["predict", "-m", str(model.model_folder), "-i", str(source), "-o", str(out), *FAST, *options])


def read(path: Path) -> tuple[np.ndarray, sitk.Image]:
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), image


def geometry(image: sitk.Image) -> tuple:
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def model_classes(model) -> list[str]:
    return json.loads((model.model_folder / "plans.json").read_text())["universal_model"]["class_names"]


def tiny_case(model, name: str = "abdsrc_000") -> Path:
    return model.raw_folder / "imagesTr" / f"{name}_0000.nii.gz"


@pytest.fixture(scope="module")
def real_ct_prediction(trained_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real_ct")
    assert predict(trained_model, REAL_CT, out, "--statistics", "--probabilities", "--preview",
                   "--step-size", "1") == 0
    return out


def test_real_ct_outputs_keep_the_input_geometry_exactly(real_ct_prediction, trained_model):
    reference = sitk.ReadImage(str(REAL_CT))
    case = real_ct_prediction / "example_ct_sm"
    written = [real_ct_prediction / "example_ct_sm.nii.gz", *case.glob("*.nii.gz"), *case.glob("probabilities/*")]
    assert len(written) == 1 + 2 * len(model_classes(trained_model))
    for path in written:
        assert geometry(sitk.ReadImage(str(path))) == geometry(reference), path.name


def test_real_ct_masks_map_labels_and_statistics_agree(real_ct_prediction, trained_model):
    labels = json.loads((real_ct_prediction / "labels.json").read_text())
    classes = model_classes(trained_model)
    assert labels["labels"] == dataset_labels(classes)[0]  # all classes: the values of the training labels
    assert labels["values"][str(labels["labels"]["liver tumor"][-1])] == ["liver", "liver tumor"]
    assert labels["files"]["liver tumor"] == "liver_tumor.nii.gz"
    label_map, _ = read(real_ct_prediction / "example_ct_sm.nii.gz")
    stats = json.loads((real_ct_prediction / "example_ct_sm" / "statistics.json").read_text())
    ct, image = read(REAL_CT)
    voxel_ml = np.prod(image.GetSpacing()) / 1000
    union = np.zeros(label_map.shape, dtype=bool)
    for name in classes:
        mask, _ = read(real_ct_prediction / "example_ct_sm" / file_name(name))
        assert set(np.unique(mask)) <= {0, 1}
        union |= mask.astype(bool)
        assert not np.any(np.isin(label_map, labels["labels"][name]) & (mask == 0)), name
        assert stats[name]["volume_ml"] == pytest.approx(mask.sum() * voxel_ml, abs=1e-3)
        if mask.any():
            assert stats[name]["mean_hu"] == pytest.approx(ct[mask == 1].mean(), abs=0.1)
        probability, _ = read(real_ct_prediction / "example_ct_sm" / "probabilities" / file_name(name))
        assert probability.dtype == np.uint8
        # masks are probabilities > 0.5 with voxels removed by post-processing; sided organs may gain voxels
        # from their pair, and a host gains the voxels of the tumours placed in it
        if not any(name in pair for pair in SIDED_PAIRS):
            gained = np.zeros(mask.shape, dtype=bool)
            for tumour in (t for t in classes if name in PARENTS.get(t, ())):
                gained |= read(real_ct_prediction / "example_ct_sm" / file_name(tumour))[0].astype(bool)
            assert not np.any(mask.astype(bool) & (probability < 127) & ~gained), name
    assert np.array_equal(label_map > 0, union)
    assert set(np.unique(label_map)) <= {0, *map(int, labels["values"])}
    assert "count" in stats["liver tumor"] and "count" not in stats["liver"]
    for name in (n for n in classes if n in TUMORS):
        lesions, mask = stats[name]["lesions"], read(real_ct_prediction / "example_ct_sm" / file_name(name))[0]
        assert stats[name]["count"] == len(lesions)
        assert sum(lesion["volume_ml"] for lesion in lesions) == pytest.approx(stats[name]["volume_ml"], abs=1e-2)
        assert all(lesion["host"] in PARENTS[name] for lesion in lesions), name  # post-processing keeps them there
        probability = read(real_ct_prediction / "example_ct_sm" / "probabilities" / file_name(name))[0]
        assert stats[name]["presence_score"] >= (probability[mask == 1].max() / 255 if mask.any() else 0) - 1e-3, name


def test_real_ct_preview_is_a_picture(real_ct_prediction):
    import matplotlib.pyplot as plt

    picture = plt.imread(real_ct_prediction / "example_ct_sm" / "preview.png")
    assert picture.ndim == 3 and picture.shape[1] > picture.shape[0] and picture[..., :3].std() > 0.05


def test_selected_classes_compute_only_their_heads_and_match_the_full_prediction(trained_model, tmp_path,
                                                                                   monkeypatch):
    full, subset = tmp_path / "full", tmp_path / "subset"
    assert predict(trained_model, tiny_case(trained_model), full, "--probabilities") == 0
    heads = []
    forward = UniversalUNet.forward

    def counting_forward(self, x, class_embeddings=None, trained=None, head_offsets=None):
        heads.append(len(self.class_names) if class_embeddings is None else class_embeddings.shape[0])
        return forward(self, x, class_embeddings, trained, head_offsets)

    monkeypatch.setattr(UniversalUNet, "forward", counting_forward)
    assert predict(trained_model, tiny_case(trained_model), subset, "--probabilities",
                   "--classes", "Liver", "LIVER TUMOUR", "spleen") == 0
    assert set(heads) == {3}
    written = sorted(p.name for p in (subset / "abdsrc_000").glob("*.nii.gz"))
    assert written == ["liver.nii.gz", "liver_tumor.nii.gz", "spleen.nii.gz"]
    for name in written:
        assert np.array_equal(read(full / "abdsrc_000" / name)[0], read(subset / "abdsrc_000" / name)[0]), name
        full_p, subset_p = (read(f / "abdsrc_000" / "probabilities" / name)[0].astype(int) for f in (full, subset))
        assert np.abs(full_p - subset_p).max() <= 1, name
    liver = read(full / "abdsrc_000" / "probabilities" / "liver.nii.gz")[0]
    assert liver.max() > liver.min(), "the comparison is not between constant maps"
    assert json.loads((subset / "labels.json").read_text())["labels"] == {
        "background": 0, "spleen": [1], "liver": [2, 4], "liver tumor": [3, 4]}


def test_a_class_the_model_never_saw_annotated_is_written_empty_with_a_warning(trained_model, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(trained_model.model_folder, model)
    checkpoint_path = model / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    checkpoint["network_weights"]["decoder.seg_layers.class_trained"][model_classes(trained_model).index("liver")] = False
    torch.save(checkpoint, checkpoint_path)
    out = tmp_path / "out"
    assert main(["predict", "-m", str(model), "-i", str(tiny_case(trained_model)), "-o", str(out), *FAST,
                 "--classes", "liver", "spleen", "--no-postprocess", "--probabilities"]) == 0
    assert "warning: no training case annotated liver: the model predicts it absent" in capsys.readouterr().err
    assert not read(out / "abdsrc_000" / "liver.nii.gz")[0].any()
    assert read(out / "abdsrc_000" / "probabilities" / "spleen.nii.gz")[0].max() > 0


def test_sided_organ_is_computed_with_its_other_side_for_postprocessing(trained_model, tmp_path, monkeypatch):
    heads = []
    forward = UniversalUNet.forward
    monkeypatch.setattr(UniversalUNet, "forward",
                        lambda self, x, e=None, t=None, o=None: heads.append(e.shape[0]) or forward(self, x, e, t, o))
    assert predict(trained_model, tiny_case(trained_model), tmp_path, "--classes", "right kidney") == 0
    assert set(heads) == {2}
    assert [p.name for p in (tmp_path / "abdsrc_000").iterdir()] == ["right_kidney.nii.gz"]


def write_dicom_series(image: sitk.Image, folder: Path) -> None:
    """One DICOM file per slice, with the geometry tags SimpleITK's series reader needs."""
    folder.mkdir(parents=True)
    d = image.GetDirection()
    tags = {"0008|0060": "CT", "0020|000d": "1.2.826.0.1.3680043.2.1125.1", "0020|000e": "1.2.826.0.1.3680043.2.1125.2",
            "0020|0052": "1.2.826.0.1.3680043.2.1125.3",
            "0020|0037": "\\".join(str(v) for v in (d[0], d[3], d[6], d[1], d[4], d[7]))}
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        slice_k = image[:, :, k]
        for tag, value in {**tags, "0020|0013": str(k + 1), "0018|0050": str(image.GetSpacing()[2]),
                           "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k))))}.items():
            slice_k.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(slice_k)


def test_dicom_series_gives_the_same_result_as_the_nifti(trained_model, tmp_path):
    nifti = tiny_case(trained_model, "liversrc_001")
    write_dicom_series(sitk.ReadImage(str(nifti)), tmp_path / "dicom" / "scan")
    assert predict(trained_model, nifti, tmp_path / "from_nifti", "--probabilities") == 0
    assert predict(trained_model, tmp_path / "dicom" / "scan", tmp_path / "from_dicom", "--probabilities") == 0
    a, a_image = read(tmp_path / "from_nifti" / "liversrc_001.nii.gz")
    b, b_image = read(tmp_path / "from_dicom" / "scan.nii.gz")
    assert np.array_equal(a, b)
    assert a_image.GetSize() == b_image.GetSize()
    for a_value, b_value in zip(geometry(a_image)[1:], geometry(b_image)[1:]):
        assert np.allclose(a_value, b_value, atol=1e-4)
    varying = 0
    for name in model_classes(trained_model):
        p, q = (read(f / "probabilities" / file_name(name))[0] for f in (tmp_path / "from_nifti" / "liversrc_001",
                                                                         tmp_path / "from_dicom" / "scan"))
        assert np.array_equal(p, q), name
        varying += p.max() > p.min()
    assert varying >= len(model_classes(trained_model)) / 2  # maps that vary, not only constant ones, agree


def test_corrupt_and_2d_files_are_skipped_others_written_exit_nonzero(trained_model, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(tiny_case(trained_model, "abdsrc_001"), inputs / "patient A.nii.gz")
    reoriented = sitk.ReadImage(str(tiny_case(trained_model, "abdsrc_002")))
    reoriented.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    reoriented.SetOrigin((30.5, 12.25, -7.0))
    sitk.WriteImage(reoriented, str(inputs / "ras.nii.gz"))
    (inputs / "broken.nii.gz").write_bytes(b"\x1f\x8b not really a gzip file")
    sitk.WriteImage(sitk.Image(28, 28, sitk.sitkInt16), str(inputs / "flat.nii.gz"))
    out = tmp_path / "out"
    result = subprocess.run([str(Path(sys.executable).parent / "nnunet-clip"), "predict", "-m",
                             str(trained_model.model_folder), "-i", str(inputs), "-o", str(out),
                             "--classes", "liver", *FAST], capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 1, result.stderr
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["patient A.nii.gz", "ras.nii.gz"]
    assert geometry(sitk.ReadImage(str(out / "ras.nii.gz"))) == geometry(reoriented)
    assert geometry(sitk.ReadImage(str(out / "ras" / "liver.nii.gz"))) == geometry(reoriented)
    assert "predicted 2 of 4 case(s)" in result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("2 failed: ") and "broken" in summary and "flat" in summary and "2D" in summary
    assert not list(out.rglob(".tmp-*")), "no temporary files left behind"


def test_untrained_name_without_text_encoder_weights_is_a_one_line_error(trained_model, tmp_path, capsys):
    assert predict(trained_model, tiny_case(trained_model), tmp_path, "--classes", "liver", "gallstone") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "gallstone" in error[0] and "random weights" in error[0]
    assert all(name in error[0] for name in model_classes(trained_model))


def test_untrained_name_is_predicted_zero_shot_from_the_text_encoder(trained_model, tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    shutil.copytree(trained_model.model_folder, model)
    plans = json.loads((model / "plans.json").read_text())
    plans["universal_model"]["text_encoder"]["pretrained"] = "openai"
    (model / "plans.json").write_text(json.dumps(plans))
    width = plans["universal_model"]["embedding_dim"]
    prompts = []
    monkeypatch.setattr("nnunet_clip.inference.classes.encode_prompts",
                        lambda spec, names: prompts.append((spec.pretrained, names)) or torch.randn(len(names), width))
    out = tmp_path / "out"
    argv = ["predict", "-m", str(model), "-i", str(tiny_case(trained_model)), "-o", str(out), *FAST]
    assert main([*argv, "--classes", "gallstone", "spleen", "--no-postprocess"]) == 0
    assert prompts == [("openai", ["gallstone"])]
    assert "gallstone: not trained" in capsys.readouterr().err
    assert json.loads((out / "labels.json").read_text())["labels"] == {"background": 0, "spleen": [1], "gallstone": [2]}
    assert (out / "abdsrc_000" / "gallstone.nii.gz").is_file()


def test_missing_fold_and_missing_input_are_one_line_errors(trained_model, tmp_path, capsys):
    assert predict(trained_model, tiny_case(trained_model), tmp_path, "-f", "3") == 2
    assert predict(trained_model, tmp_path / "nothing.nii.gz", tmp_path, "-f", "0") == 2
    errors = capsys.readouterr().err.strip().splitlines()[-2:]
    assert "checkpoint_final.pth for fold(s) 3" in errors[0] and "nothing.nii.gz: no such file" in errors[1]


def test_a_model_trained_on_fold_all_only_is_found_without_folds(trained_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(trained_model.model_folder, model, ignore=shutil.ignore_patterns("validation"))
    for extra in model.glob("fold_[1-9]*"):
        shutil.rmtree(extra)
    (model / "fold_0").rename(model / "fold_all")
    case = tiny_case(trained_model)
    assert main(["predict", "-m", str(model), "-i", str(case), "-o", str(tmp_path / "all"), *FAST]) == 0
    assert predict(trained_model, case, tmp_path / "fold0", "-f", "0") == 0
    found, _ = read(tmp_path / "all" / "abdsrc_000.nii.gz")
    fold0, _ = read(tmp_path / "fold0" / "abdsrc_000.nii.gz")
    assert found.any() and np.array_equal(found, fold0)  # the fold_all checkpoint (fold 0's) was used


def test_logits_grown_past_float16_are_predicted_as_before_not_stopped_by_nnunets_inf_check(trained_model, tmp_path,
                                                                                             monkeypatch):
    """Long training grows the heads' logits to hundreds; nnU-Net's sliding window sums them in float16.

    The logits are first moved one unit away from 0: nnU-Net's float16 sigmoid rounds |logit| < 1e-3
    to exactly 0.5, so a one-epoch model's near-zero voxels would be undecided before and decided after.
    The case is one sliding window (its shape is the patch size), where the clip keeps every sign."""
    logits = UniversalUNet._logits  # one full-resolution map at inference (no deep supervision)

    def decided(self, *args):
        z = logits(self, *args)
        return z + torch.sign(z)

    monkeypatch.setattr(UniversalUNet, "_logits", decided)
    before = tmp_path / "before"
    assert predict(trained_model, tiny_case(trained_model), before) == 0
    monkeypatch.setattr(UniversalUNet, "_logits", lambda self, *args: decided(self, *args) * 1e4)
    after = tmp_path / "after"
    assert predict(trained_model, tiny_case(trained_model), after) == 0  # without the clip: "Encountered inf"
    written = sorted(p.name for p in (before / "abdsrc_000").glob("*.nii.gz"))
    assert written and written == sorted(p.name for p in (after / "abdsrc_000").glob("*.nii.gz"))
    assert read(before / "abdsrc_000.nii.gz")[0].any()
    for name in written:
        assert np.array_equal(read(before / "abdsrc_000" / name)[0], read(after / "abdsrc_000" / name)[0]), name
