"""``nnunet-clip predict`` under faults (docs/reliability.md): killed mid-run and run again, a full
disk, a read-only output folder, bad scans among good ones, paths with spaces and non-ASCII
characters."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

import faults
from nnunet_clip.cli import main
from test_predict import REAL_CT

FAST = ["--disable-tta", "--device", "cpu", "--step-size", "1"]


def predict(model, inputs, out, *options) -> list[str]:
    return ["nnunet-clip", "predict", "-m", str(model.model_folder), "-i", str(inputs), "-o", str(out), *FAST,
            *options]


def contents(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def scans(tmp_path):
    """Two copies of the real CT in a folder whose path has spaces and non-ASCII characters."""
    folder = tmp_path / "Patientenbilder für die Vorhersage"
    folder.mkdir()
    for name in ("Patient A", "Patient B"):
        shutil.copy(REAL_CT, folder / f"{name}.nii.gz")
    return folder


def test_killed_mid_run_then_run_again_gives_the_uninterrupted_outputs(trained_model, scans, tmp_path):
    out = tmp_path / "prédictions"
    assert main(predict(trained_model, scans, out)[1:]) == 0
    uninterrupted = contents(out)
    shutil.rmtree(out)
    # 5 classes + the map per case: the 8th image is the second case's second mask
    kill = {"target": "SimpleITK:WriteImage", "call": 8, "path_arg": 1}
    assert faults.killed(faults.run(predict(trained_model, scans, out), kill=kill))
    assert list(out.rglob(".tmp-*")), "the kill left a half-written file"
    assert main(predict(trained_model, scans, out)[1:]) == 0
    assert contents(out) == uninterrupted


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(trained_model, scans, tmp_path):
    out = tmp_path / "out"
    result = faults.run(predict(trained_model, scans, out, "--probabilities"), file_size_limit=4_000)
    error = faults.one_line_error(result, "predict")
    assert str(out) in error and "written incompletely" in error
    assert not list(out.rglob(".tmp-*"))
    for path in out.rglob("*.nii.gz"):  # what was written before the disk filled up is whole
        sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_a_read_only_output_folder_is_one_line(trained_model, scans, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = faults.run(predict(trained_model, scans, out), obey_permissions=True)
    finally:
        out.chmod(0o755)
    assert faults.one_line_error(result, "predict").endswith(f"{out / 'labels.json'}: Permission denied")
    assert not list(out.iterdir())


def test_bad_scans_are_one_line_each_naming_the_file_and_the_good_ones_are_written(trained_model, scans, tmp_path,
                                                                                   capsys):
    good = sitk.ReadImage(str(REAL_CT))
    array = sitk.GetArrayFromImage(good)
    truncated = scans / "truncated.nii.gz"
    truncated.write_bytes(REAL_CT.read_bytes()[:300])
    nan = scans / "nan.nii.gz"
    with_nan = sitk.GetImageFromArray(np.where(array > 0, np.nan, array).astype(np.float32))
    with_nan.CopyInformation(good)
    sitk.WriteImage(with_nan, str(nan))
    four_d = scans / "four_d.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.stack([array, array]), isVector=False), str(four_d))
    mr_like = scans / "mr_like.nii.gz"
    mr = sitk.GetImageFromArray((array - array.min()).astype(np.int16))
    mr.CopyInformation(good)
    sitk.WriteImage(mr, str(mr_like))
    (scans / "loop").symlink_to(scans)  # a link loop among the inputs must not hang the search
    out = tmp_path / "out"
    assert main(predict(trained_model, scans, out)[1:]) == 1
    lines = faults.text_lines(capsys.readouterr().err)
    assert [line for line in lines if line.startswith("3 failed: ")] == [
        "3 failed: " + "; ".join(f"{p.name[:-7]} ({p}: {m})" for p, m in (
            (four_d, "expected a 3D single-channel scan, got 4D with 1 channel(s) of size (122, 101, 30, 2)"),
            (nan, "holds NaN or infinite voxels"), (truncated, "truncated (the compressed data ends early)")))]
    warning = (f"warning: {mr_like}: no voxel below -500 HU (no air): not a CT in Hounsfield units? (an MR image, "
               "or a CT without its rescale to HU); results will be unreliable")
    assert [line for line in lines if "warning: " in line] == [warning]
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["Patient A.nii.gz", "Patient B.nii.gz", "mr_like.nii.gz"]


def test_an_empty_input_folder_is_one_line(trained_model, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(predict(trained_model, tmp_path / "empty", tmp_path / "out")[1:]) == 2
    assert faults.text_lines(capsys.readouterr().err) == [
        f"nnunet-clip predict: error: {tmp_path / 'empty'}: no image files (.nii.gz, .nii, .mha, .nrrd) and no "
        "DICOM series"]
