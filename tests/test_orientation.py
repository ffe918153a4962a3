"""Predictions depend on the anatomy, not on how a scan is stored (axis order, flips, obliquity)."""
from __future__ import annotations

import itertools
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_command
from nnunet_clip.cli import main
from nnunet_clip.errors import InputError
from nnunet_clip.orientation import ModelView, direction_of, orientation_code, reoriented
from nnunet_clip.trainers.nnUNetTrainerCLIP import training_orientation

REAL_CT = Path(__file__).resolve().parent / "data" / "example_ct_sm.nii.gz"  # stored RAS-like: direction -1, -1, 1
STORED_AS = ("LPS", "RAS", "IPL")  # as written by most DICOM tools, as by nibabel, slice-first
ALL_ORIENTATIONS = ["".join(letters) for axes in itertools.permutations(range(3))
                    for letters in itertools.product(*("LR PA SI".split()[a] for a in axes))]


def small_image(seed: int = 0) -> sitk.Image:
    image = sitk.GetImageFromArray(np.random.default_rng(seed).normal(size=(5, 6, 7)).astype(np.float32))
    image.SetSpacing((1.0, 2.0, 3.0))
    image.SetOrigin((10.0, -20.0, 30.0))
    return image


@pytest.mark.parametrize("stored", ALL_ORIENTATIONS)
def test_codes_agree_with_simpleitk_and_the_view_goes_back_exactly(stored):
    scan = sitk.DICOMOrient(small_image(), stored)
    assert orientation_code(scan.GetDirection()) == stored
    assert orientation_code(scan.GetDirection()) == \
        sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(scan.GetDirection())
    assert np.array_equal(direction_of(stored).ravel(), scan.GetDirection())
    assert np.array_equal(reoriented(sitk.GetArrayFromImage(scan), stored, "LPS"),
                          sitk.GetArrayFromImage(sitk.DICOMOrient(scan, "LPS")))
    for model in ("LPS", "RAS", "SAR"):
        view = ModelView.of(scan, model)
        assert not view.resampled and orientation_code(view.image.GetDirection()) == model
        back = view.to_input(sitk.GetArrayFromImage(view.image))
        assert back.flags.c_contiguous and np.array_equal(back, sitk.GetArrayFromImage(scan))


def rotated(image: sitk.Image, degrees: float) -> sitk.Image:
    """The same voxels with the direction turned about the scan's z axis: an oblique scan."""
    a = np.radians(degrees)
    turn = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    out = sitk.Image(image)
    out.SetDirection((turn @ np.asarray(image.GetDirection()).reshape(3, 3)).ravel().tolist())
    return out


def test_an_oblique_scan_is_resampled_onto_axis_aligned_axes_with_its_anatomy_in_place():
    array = np.full((20, 30, 40), -1000, np.int16)
    array[8:12, 10:14, 25:29] = 1000  # a bright cube off centre
    scan = sitk.GetImageFromArray(array)
    scan.SetSpacing((1.5, 1.5, 2.5))
    scan.SetOrigin((5.0, -3.0, 12.0))
    scan = rotated(scan, 20)
    view = ModelView.of(scan, "RAS")
    assert view.resampled and view.image.GetDirection() == tuple(direction_of("RAS").ravel())

    def world_centre(image: sitk.Image) -> np.ndarray:
        bright = np.argwhere(sitk.GetArrayFromImage(image) > 0).mean(0)[::-1]
        return np.asarray(image.TransformContinuousIndexToPhysicalPoint(bright.tolist()))

    assert np.allclose(world_centre(view.image), world_centre(scan), atol=0.5)
    assert float(sitk.GetArrayViewFromImage(view.image).min()) == -1000  # outside the scan: its own air
    back = view.to_input(sitk.GetArrayFromImage(view.image).astype(np.float32))  # twice interpolated
    assert back.shape == array.shape and np.array_equal(back > 0, array > 0)


def write_properties(folder: Path, key: str, properties: dict) -> str:
    path = folder / f"{key}.pkl"
    path.write_bytes(pickle.dumps(properties))
    return str(path)


def test_training_refuses_cases_stored_in_different_orientations_naming_one_of_each(tmp_path):
    sitk_case = lambda code: {"sitk_stuff": {"direction": tuple(direction_of(code).ravel())}}
    same = {k: write_properties(tmp_path, k, sitk_case("LPS")) for k in ("a", "b")}
    assert training_orientation(same) == "LPS"
    nibabel = {"nibabel_stuff": {"reoriented_affine": np.diag([2.0, 2.0, 3.0, 1.0])}}
    assert training_orientation({"c": write_properties(tmp_path, "c", nibabel)}) == "RAS"
    mixed = {**same, "d": write_properties(tmp_path, "d", sitk_case("RAS"))}
    with pytest.raises(InputError) as error:
        training_orientation(mixed)
    message = str(error.value)
    assert "\n" not in message and "a: LPS" in message and "d: RAS" in message


def test_the_trained_model_records_its_training_orientation(trained_model):
    plans = json.loads((trained_model.model_folder / "plans.json").read_text())
    assert plans["universal_model"]["orientation"] == "LPS"  # the tiny dataset is written in LPS, read by SimpleITK


def stored_copies(folder: Path, name: str = "ct") -> list[Path]:
    """The real CT stored in each of STORED_AS: one folder per orientation, the same file name."""
    scan = sitk.ReadImage(str(REAL_CT))
    paths = []
    for code in STORED_AS:
        path = folder / code / f"{name}.nii.gz"
        path.parent.mkdir(parents=True)
        sitk.WriteImage(sitk.DICOMOrient(scan, code), str(path))
        paths.append(path)
    return paths


def in_lps(path: Path) -> tuple[np.ndarray, tuple]:
    """Voxels and geometry of a written image, brought to LPS: how it lies in the world."""
    image = sitk.DICOMOrient(sitk.ReadImage(str(path)), "LPS")
    return sitk.GetArrayFromImage(image), (image.GetSize(), np.round(image.GetSpacing(), 4).tolist(),
                                           np.round(image.GetOrigin(), 3).tolist())


def test_predict_writes_the_same_world_outputs_whichever_way_the_scan_is_stored(trained_model, tmp_path):
    outputs = []
    for scan in stored_copies(tmp_path / "in"):
        out = tmp_path / "out" / scan.parent.name
        assert main(["predict", "-m", str(trained_model.model_folder), "-i", str(scan), "-o", str(out),
                     "--device", "cpu", "--statistics", "--probabilities", "--preview", "--step-size", "1"]) == 0
        stored = sitk.ReadImage(str(scan))
        files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
        for image in (p for p in files if p.name.endswith(".nii.gz")):  # every output on the input's own grid
            written = sitk.ReadImage(str(out / image))
            assert (written.GetSize(), written.GetSpacing(), written.GetOrigin(), written.GetDirection()) == (
                stored.GetSize(), stored.GetSpacing(), stored.GetOrigin(), stored.GetDirection()), image
        outputs.append((out, files))
    (first, files), others = outputs[0], outputs[1:]
    assert len([f for f in files if f.parent.name == "probabilities"]) == 5 and Path("ct/preview.png") in files
    assert in_lps(first / "ct.nii.gz")[0].any(), "the comparison is not between empty predictions"
    for out, other_files in others:
        assert other_files == files
        for name in files:
            if name.suffix == ".png":
                assert (out / name).read_bytes() == (first / name).read_bytes(), name
            elif name.suffix == ".json":
                assert json.loads((out / name).read_text()) == json.loads((first / name).read_text()), name
            else:
                (a, grid_a), (b, grid_b) = in_lps(first / name), in_lps(out / name)
                assert grid_a == grid_b and np.array_equal(a, b), f"{out.name}: {name}"


def test_an_oblique_scan_is_predicted_on_its_own_grid_with_a_note(trained_model, tmp_path, capsys):
    scan = rotated(sitk.ReadImage(str(REAL_CT)), 15)
    path = tmp_path / "oblique.nii.gz"
    sitk.WriteImage(scan, str(path))
    assert main(["predict", "-m", str(trained_model.model_folder), "-i", str(path), "-o", str(tmp_path / "out"),
                 "--device", "cpu", "--classes", "liver"]) == 0
    assert "oblique direction; resampled to the model's LPS axes and back" in capsys.readouterr().err
    written = sitk.ReadImage(str(tmp_path / "out" / "oblique" / "liver.nii.gz"))
    stored = sitk.ReadImage(str(path))
    assert (written.GetSize(), written.GetSpacing(), written.GetOrigin()) == (
        stored.GetSize(), stored.GetSpacing(), stored.GetOrigin())
    assert np.allclose(written.GetDirection(), stored.GetDirection(), atol=1e-6)


def test_nnunetv2_predict_reorients_through_the_reader_the_converters_select(trained_model, tmp_path):
    """Converted datasets name nnU-Net's NibabelIOWithReorient in dataset.json, which the plans carry:
    nnUNetv2_predict then reads each scan in RAS and writes it back in its own orientation."""
    model = tmp_path / "model"
    shutil.copytree(trained_model.model_folder, model, ignore=shutil.ignore_patterns("validation"))
    plans = json.loads((model / "plans.json").read_text())
    plans["image_reader_writer"] = "NibabelIOWithReorient"
    (model / "plans.json").write_text(json.dumps(plans))
    inputs = tmp_path / "in"
    inputs.mkdir()
    for scan in stored_copies(tmp_path / "copies"):
        shutil.copy(scan, inputs / f"{scan.parent.name}_0000.nii.gz")
    run_command("nnUNetv2_predict_from_modelfolder", "-i", str(inputs), "-o", str(tmp_path / "out"), "-m",
                str(model), "-f", "0", "-device", "cpu", "--disable_tta", "-npp", "1", "-nps", "1")
    maps = {code: in_lps(tmp_path / "out" / f"{code}.nii.gz") for code in STORED_AS}
    assert maps["LPS"][0].any()
    for code in STORED_AS[1:]:
        assert maps[code][1] == maps["LPS"][1] and np.array_equal(maps[code][0], maps["LPS"][0]), code


def test_evaluate_compares_label_maps_in_world_coordinates_and_refuses_another_grid(tmp_path):
    from nnunet_clip.evaluation.evaluate_folder import evaluate_folders

    array = np.zeros((6, 8, 10), np.uint8)
    array[1:4, 2:5, 1:3] = 1  # patient's right (low x in LPS): asymmetric, so a mirrored map would score 0
    reference = sitk.GetImageFromArray(array)
    reference.SetSpacing((1.0, 1.5, 2.0))
    for folder in ("ref", "pred", "shifted"):
        (tmp_path / folder).mkdir()
    sitk.WriteImage(reference, str(tmp_path / "ref" / "a.nii.gz"))
    sitk.WriteImage(sitk.DICOMOrient(reference, "RAS"), str(tmp_path / "pred" / "a.nii.gz"))
    labels = {"labels": {"background": 0, "liver": 1}, "file_ending": ".nii.gz"}
    scores = evaluate_folders(tmp_path / "ref", tmp_path / "pred", labels, progress=False)
    assert scores["per_class"]["liver"]["dsc"]["mean"] == 1.0
    reference.SetOrigin((0.0, 0.0, 4.0))  # the same array two slices away
    sitk.WriteImage(reference, str(tmp_path / "shifted" / "a.nii.gz"))
    with pytest.raises(InputError, match="its grid .* differs from the reference"):
        evaluate_folders(tmp_path / "ref", tmp_path / "shifted", labels, progress=False)
