"""``nnunet-clip evaluate`` under faults (docs/reliability.md): killed while writing its outputs and
run again, a full disk, a read-only output folder, bad label files, paths with spaces and
non-ASCII characters."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

import faults
from nnunet_clip.cli import main
from nnunet_clip.taxonomy import dataset_labels

LABELS, _ = dataset_labels(["liver", "spleen"])
SHAPE = (8, 20, 20)


def write(path, array, origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


@pytest.fixture
def folders(tmp_path):
    """References and predictions of three cases (liver 1, spleen 2, shifted by a voxel), dataset.json."""
    root = tmp_path / "évaluation des cas"
    for case in ("a", "b", "c"):
        label = np.zeros(SHAPE, np.uint8)
        label[2:6, 3:9, 3:9], label[2:6, 11:17, 11:17] = 1, 2
        write(root / "ref" / f"{case}.nii.gz", label)
        write(root / "pred" / f"{case}.nii.gz", np.roll(label, 1, axis=2))
    (root / "dataset.json").write_text(json.dumps({"labels": LABELS, "file_ending": ".nii.gz", "annotated_classes": {
        case: ["liver", "spleen"] for case in "abc"}}))
    return root


def evaluate(root, *options) -> list[str]:
    return ["nnunet-clip", "evaluate", "-r", str(root / "ref"), "-p", str(root / "pred"),
            "--dataset-json", str(root / "dataset.json"), "-o", str(root / "out/metrics.json"), *options]


def contents(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_killed_while_writing_then_run_again_gives_the_uninterrupted_outputs(folders, tmp_path):
    assert main(evaluate(folders)[1:]) == 0
    uninterrupted = contents(folders / "out")
    shutil.rmtree(folders / "out")
    assert faults.killed(faults.run(evaluate(folders), kill={"target": "os:replace", "call": 2}))
    assert sorted(p.name for p in (folders / "out").iterdir())[0].startswith(".tmp-")  # the CSV, not renamed
    assert main(evaluate(folders)[1:]) == 0
    assert contents(folders / "out") == uninterrupted


def test_a_full_disk_is_one_line_and_keeps_the_earlier_outputs_whole(folders):
    assert main(evaluate(folders)[1:]) == 0
    before = contents(folders / "out")
    error = faults.one_line_error(faults.run(evaluate(folders), file_size_limit=2_000), "evaluate")
    assert "File too large" in error and str(folders / "out") in error
    assert contents(folders / "out") == before


def test_a_read_only_output_folder_is_one_line(folders):
    (folders / "out").mkdir()
    (folders / "out").chmod(0o555)
    try:
        result = faults.run(evaluate(folders), obey_permissions=True)
    finally:
        (folders / "out").chmod(0o755)
    assert faults.one_line_error(result, "evaluate").endswith(f"{folders / 'out/metrics.json'}: Permission denied")
    assert not list((folders / "out").iterdir())


def spoil_truncated(path):
    path.write_bytes(path.read_bytes()[:60])
    return "truncated"


def spoil_grid(path):
    image = sitk.ReadImage(str(path))
    write(path, sitk.GetArrayFromImage(image)[:, :, :-2])
    return "differs from the reference"


def spoil_nan(path):
    write(path, np.full(SHAPE, np.nan, np.float32))
    return "holds NaN or infinite voxels"


@pytest.mark.parametrize("spoil", [spoil_truncated, spoil_grid, spoil_nan], ids=["truncated", "other grid", "NaN"])
def test_a_bad_prediction_is_one_line_naming_it(folders, capsys, spoil):
    path = folders / "pred/b.nii.gz"
    problem = spoil(path)
    assert main(evaluate(folders)[1:]) == 2
    error = faults.text_lines(capsys.readouterr().err)
    assert len(error) == 1 and error[0].startswith(f"nnunet-clip evaluate: error: {path}: ") and problem in error[0]
    assert not (folders / "out").exists()
