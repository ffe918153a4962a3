"""``nnunet-clip convert`` under faults (docs/reliability.md): killed mid-run and run again, a full
disk, a read-only dataset, bad input, two calls at once. Each time the dataset's earlier case stays
untouched and nothing is left half-written."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time

import numpy as np
import pytest
import SimpleITK as sitk

import faults
from conversion import phantom
from nnunet_clip.cli import main
from nnunet_clip.synthetic.layouts import SourceCase, write_source

LIVER_CASES = (1, 2, 3)
RECORDS = ("dataset.json", "provenance.jsonl")


def contents(folder) -> dict[str, str]:
    """Every file below ``folder``: relative path -> sha1 of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def files(folder) -> dict[str, bytes]:
    """Every file below ``folder``: relative path -> its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def kept(folder, before: dict[str, bytes]) -> None:
    """Every file of the dataset as it was, but the records, which cases added since extend:
    dataset.json (rewritten) and provenance.jsonl (appended to, its earlier lines whole)."""
    now = files(folder)
    assert {k: v for k, v in now.items() if k in before and k not in RECORDS} == \
           {k: v for k, v in before.items() if k not in RECORDS}
    assert now["provenance.jsonl"].startswith(before["provenance.jsonl"])


def complete(folder) -> None:
    """No temporary file is left and every image reads."""
    assert not [p for p in folder.rglob(".tmp-*")]
    for path in folder.rglob("*.nii.gz"):
        sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """msd-spleen (one case, converted first in every test) and msd-liver (three cases)."""
    root = tmp_path_factory.mktemp("sources")
    spleen = write_source("msd-spleen", root / "spleen", [phantom.case(2, seed=1, classes=("spleen",))])
    liver = write_source("msd-liver", root / "liver", [phantom.case(n, seed=10 + n) for n in LIVER_CASES])
    return spleen, liver


def convert(source, root, *options) -> list[str]:
    return ["nnunet-clip", "convert", source, str(root), "-d", "1", *options]


@pytest.fixture
def dataset(tmp_path, monkeypatch, sources):
    """A dataset holding the converted msd-spleen case: (folder, its contents)."""
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    assert main(convert("msd-spleen", sources[0])[1:]) == 0
    folder = tmp_path / "raw/Dataset001_Universal"
    return folder, files(folder)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, sources):
    """The contents of the dataset after the spleen and the liver conversions, uninterrupted."""
    raw = tmp_path_factory.mktemp("raw")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("nnUNet_raw", str(raw))
        for source, root in zip(("msd-spleen", "msd-liver"), sources):
            assert main(convert(source, root)[1:]) == 0
    return contents(raw / "Dataset001_Universal")


@pytest.mark.parametrize("kill", [
    {"target": "SimpleITK:WriteImage", "call": 1, "path_arg": 1},  # the first image, half written
    {"target": "SimpleITK:WriteImage", "call": 4, "path_arg": 1},  # the second case's label, half written
    {"target": "os:replace", "call": 3},  # the first case's files in place, dataset.json not yet rewritten
], ids=["first image half written", "second label half written", "before dataset.json"])
def test_killed_then_run_again_gives_the_uninterrupted_dataset(dataset, sources, uninterrupted, kill):
    folder, _ = dataset
    assert faults.killed(faults.run(convert("msd-liver", sources[1]), kill=kill))
    assert main(convert("msd-liver", sources[1])[1:]) == 0
    assert contents(folder) == uninterrupted
    complete(folder)


def noisy_case(case_id: int) -> SourceCase:
    """A case whose image compresses badly: 250 KB, far over the file size limit below."""
    array = np.random.default_rng(case_id).integers(-1000, 1000, (32, 64, 64)).astype(np.int16)
    liver = np.zeros(array.shape, bool)
    liver[10:20, 20:40, 20:40] = True
    return SourceCase(case_id, sitk.GetImageFromArray(array), {"liver": liver})


def test_a_full_disk_is_one_line_and_leaves_the_dataset_as_it_was(dataset, tmp_path):
    folder, before = dataset
    root = write_source("msd-liver", tmp_path / "noisy", [noisy_case(5)])
    result = faults.run(convert("msd-liver", root), file_size_limit=64_000)
    error = faults.one_line_error(result, "convert")
    assert "imagesTr/msd-liver_5_0000.nii.gz: written incompletely (ERROR: NWAD: wrote only 0 of" in error
    assert files(folder) == before
    complete(folder)


@pytest.mark.parametrize("read_only", ["the raw folder", "the dataset"])
def test_a_read_only_folder_is_one_line_and_leaves_the_dataset_as_it_was(dataset, sources, tmp_path, read_only):
    folder, before = dataset
    locked = [folder.parent] if read_only == "the raw folder" else [folder, folder / "imagesTr", folder / "labelsTr"]
    for path in locked:
        path.chmod(0o555)
    try:
        dataset_id = "2" if read_only == "the raw folder" else "1"
        result = faults.run([*convert("msd-liver", sources[1])[:-1], dataset_id], obey_permissions=True)
    finally:
        for path in locked:
            path.chmod(0o755)
    error = faults.one_line_error(result, "convert")
    assert ("Permission denied" in error) if read_only == "the raw folder" else ("cannot be written" in error)
    assert files(folder) == before
    complete(folder)


def test_two_converts_into_one_dataset_at_once(dataset, sources, tmp_path):
    folder, before = dataset
    paused, resume = tmp_path / "paused", tmp_path / "resume"
    first = subprocess.Popen(faults.command(
        convert("msd-liver", sources[1]), pause={"target": "SimpleITK:WriteImage", "call": 1,
                                                  "paused": str(paused), "resume": str(resume)}),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not paused.exists():
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.05)
        second = faults.run(convert("msd-spleen", sources[0]))
        assert faults.one_line_error(second, "convert").endswith(
            f"{folder}: another nnunet-clip convert is writing this dataset")
    finally:
        resume.touch()
        assert first.wait(timeout=120) == 0, first.stderr.read()
    listed = json.loads((folder / "dataset.json").read_text())["annotated_classes"]
    assert list(listed) == ["msd-spleen_2", *(f"msd-liver_{n}" for n in LIVER_CASES)]
    kept(folder, before)
    complete(folder)


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing lost

def _write_nifti(array, path):
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=False), str(path))


def truncated(root):
    path = root / "Task03_Liver/imagesTr/liver_2.nii.gz"
    path.write_bytes(path.read_bytes()[:200])
    return path, "truncated (the compressed data ends early)"


def two_dimensional(root):
    path = root / "Task03_Liver/imagesTr/liver_2.nii.gz"
    _write_nifti(np.zeros((12, 16), np.int16), path)
    return path, "expected a 3D single-channel CT, got 2D"


def four_dimensional(root):
    path = root / "Task03_Liver/imagesTr/liver_2.nii.gz"
    _write_nifti(np.zeros((2, 12, 12, 16), np.int16), path)
    return path, "expected a 3D single-channel CT, got 4D"


def _set_voxels(path, values: dict) -> None:
    """Rewrite the image file ``path`` with the voxels at the given (z, y, x) set, its header kept."""
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    for index, value in values.items():
        array[index] = value
    changed = sitk.GetImageFromArray(array)
    changed.CopyInformation(image)
    sitk.WriteImage(changed, str(path))


def not_a_number(root):
    path = root / "OrganSegmentations/volume-2.nii.gz"  # CT-ORG stores float32 images
    _set_voxels(path, {(3, 3, 3): np.nan, (4, 4, 4): np.inf})
    return path, "holds NaN or infinite voxels"


def undefined_label_value(root):
    path = root / "Task03_Liver/labelsTr/liver_2.nii.gz"
    _set_voxels(path, {(5, 5, 5): 9})
    return path, "label value 9 is not defined by msd-liver"


def label_on_another_grid(root):
    path = root / "Task03_Liver/labelsTr/liver_2.nii.gz"
    image = sitk.ReadImage(str(path))
    image.SetOrigin((50.0, 0.0, 0.0))
    sitk.WriteImage(image, str(path))
    return path, "geometry does not match the image"


def corrupt_dicom(root):
    path = sorted((root / "Train_Sets/CT/2/DICOM_anon").iterdir())[3]
    path.write_bytes(b"DICM but not really" * 10)
    return path, "not a readable DICOM slice"


def truncated_dicom(root):
    path = sorted((root / "Train_Sets/CT/2/DICOM_anon").iterdir())[3]
    path.write_bytes(path.read_bytes()[:400])
    return path, "not a readable DICOM slice"


def image_in_a_link_loop(root):
    path = root / "Task03_Liver/imagesTr/liver_2.nii.gz"
    path.unlink()
    path.symlink_to(path)
    return path, "broken symbolic link (or a link loop)"


def empty_folder(root):
    shutil.rmtree(root)
    root.mkdir()
    (root / "loop").symlink_to(root)  # and a link loop, which must not hang the search
    return root, "no msd-liver cases found"


BAD_INPUTS = [truncated, two_dimensional, four_dimensional, not_a_number, undefined_label_value,
              label_on_another_grid, corrupt_dicom, truncated_dicom, image_in_a_link_loop, empty_folder]


@pytest.mark.parametrize("spoil", BAD_INPUTS, ids=[f.__name__ for f in BAD_INPUTS])
def test_bad_input_is_one_line_naming_the_file_and_loses_nothing(dataset, tmp_path, capsys, spoil):
    folder, before = dataset
    source = "ct-org" if spoil is not_a_number else "chaos" if "dicom" in spoil.__name__ else "msd-liver"
    cases = [phantom.case(n, seed=20 + n, classes=("liver", "liver tumor")) for n in (1, 2)]
    root = write_source(source, tmp_path / "input", cases)
    path, problem = spoil(root)
    capsys.readouterr()
    assert main(convert(source, root)[1:]) == 2
    error = faults.text_lines(capsys.readouterr().err)
    assert len(error) == 1 and error[0].startswith(f"nnunet-clip convert: error: {path}: "), error
    assert problem in error[0]
    listed = list(json.loads((folder / "dataset.json").read_text())["annotated_classes"])
    assert listed[0] == "msd-spleen_2" and set(listed) <= {"msd-spleen_2", f"{source}_1"}
    kept(folder, before)
    complete(folder)


def test_mr_like_intensities_convert_with_a_warning_naming_the_file(dataset, tmp_path, capsys):
    case = phantom.case(4, seed=30, classes=("liver",))
    case.image = sitk.Cast(sitk.Abs(case.image), sitk.sitkInt16)  # no air: MR-like, all values positive
    root = write_source("msd-liver", tmp_path / "mr", [case])
    assert main(convert("msd-liver", root)[1:]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert warning == [f"warning: {root / 'Task03_Liver/imagesTr/liver_4.nii.gz'}: no voxel below -500 HU "
                       "(no air): not a CT in Hounsfield units? (an MR image, or a CT without its rescale to "
                       "HU); results will be unreliable"]


def test_spaces_and_non_ascii_characters_in_every_path(tmp_path, monkeypatch, sources):
    raw = tmp_path / "nnU-Net raw Ωμέγα"
    monkeypatch.setenv("nnUNet_raw", str(raw))
    root = tmp_path / "données CT" / "Tâche 03 – foie"
    shutil.copytree(sources[1], root)
    assert main(convert("msd-liver", root)[1:]) == 0
    dataset = json.loads((raw / "Dataset001_Universal/dataset.json").read_text(encoding="utf-8"))
    assert list(dataset["annotated_classes"]) == [f"msd-liver_{n}" for n in LIVER_CASES]
    complete(raw / "Dataset001_Universal")
