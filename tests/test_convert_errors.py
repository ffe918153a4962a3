"""Bad input: a one-line error naming the file; nothing half-written; converted cases untouched."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conversion import phantom
from conversion.assemble import snapshot, write_and_convert
from dataset_conversion.convert import convert
from dataset_conversion.provenance import Provenance
from nnunet_clip.errors import InputError
from nnunet_clip.synthetic.layouts import write_source


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """A dataset already holding one converted case (msd-spleen 2), and its files."""
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    folder = write_and_convert(tmp_path, "msd-spleen", [phantom.case(2, seed=1, classes=("spleen",))])
    return folder, snapshot(folder)


def fails(source, root, match):
    with pytest.raises(InputError, match=match) as error:
        convert(source, root, 1)
    assert "\n" not in str(error.value)
    return str(error.value)


RECORDS = ("dataset.json", "provenance.jsonl")


def unchanged_but(folder, before, added=()):
    """The dataset holds the cases of ``before`` untouched plus the ``added`` ones, nothing else."""
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if k in before and k not in RECORDS} == \
           {k: v for k, v in before.items() if k not in RECORDS}
    listed = list(phantom.dataset_json(folder)["annotated_classes"])
    assert listed == ["msd-spleen_2", *added] == list(Provenance.load(folder).sources)
    images = sorted(k for k in after if k.startswith("imagesTr/"))
    assert images == sorted(f"imagesTr/{c}_0000.nii.gz" for c in listed)
    assert sorted(k for k in after if k.startswith("labelsTr/")) == sorted(f"labelsTr/{c}.nii.gz" for c in listed)


def test_empty_folder(tmp_path, dataset):
    (tmp_path / "empty").mkdir()
    message = fails("lits", tmp_path / "empty", "no lits cases found")
    assert message.startswith(str(tmp_path / "empty"))
    unchanged_but(*dataset)


def test_missing_input_folder(tmp_path, dataset):
    fails("btcv", tmp_path / "nowhere", f"{tmp_path / 'nowhere'}: no such folder")


def test_missing_label_file(tmp_path, dataset):
    root = write_source("msd-liver", tmp_path / "msd", [phantom.case(n, seed=n) for n in (1, 2)])
    (root / "Task03_Liver/labelsTr/liver_2.nii.gz").unlink()
    fails("msd-liver", root, r"Task03_Liver/imagesTr/liver_2\.nii\.gz: missing the label file")
    unchanged_but(*dataset)


def test_unreadable_file_after_good_cases(tmp_path, dataset):
    root = write_source("msd-liver", tmp_path / "msd", [phantom.case(n, seed=n) for n in (1, 2)])
    (root / "Task03_Liver/imagesTr/liver_2.nii.gz").write_bytes(b"\x1f\x8b broken")
    fails("msd-liver", root, r"imagesTr/liver_2\.nii\.gz: truncated")
    unchanged_but(*dataset, added=["msd-liver_1"])


def test_geometry_mismatch(tmp_path, dataset):
    root = write_source("ct-org", tmp_path / "ctorg", [phantom.case(4, seed=4)])
    path = root / "OrganSegmentations/labels-4.nii.gz"
    label = sitk.ReadImage(str(path))
    label.SetSpacing((2.0, 1.5, 5.0))
    sitk.WriteImage(label, str(path))
    message = fails("ct-org", root, "labels-4.nii.gz: geometry does not match the image")
    assert "volume-4.nii.gz" in message and "spacing" in message
    unchanged_but(*dataset)


def test_undefined_label_value(tmp_path, dataset):
    case = phantom.case(3, seed=5, classes=("spleen",))
    case.meta["raw_values"] = {7: case.masks["spleen"]}
    root = write_source("msd-spleen", tmp_path / "spleen", [case])
    fails("msd-spleen", root, r"spleen_3\.nii\.gz: label value 7 is not defined by msd-spleen")
    unchanged_but(*dataset)


def test_chaos_png_with_a_foreign_value(tmp_path, dataset):
    root = write_source("chaos", tmp_path / "chaos", [phantom.case(2, seed=6, classes=("liver",))])
    png = root / "Train_Sets/CT/2/Ground/liver_GT_003.png"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((12, 16), 128, np.uint8)), str(png))
    fails("chaos", root, r"liver_GT_003\.png: label value 128 is not defined by chaos")
    unchanged_but(*dataset)


def test_leftovers_of_an_interrupted_call_are_removed(tmp_path, dataset):
    folder, before = dataset
    (folder / "imagesTr/msd-liver_9_0000.nii.gz").write_bytes(b"half")
    (folder / "labelsTr/.tmp-123-msd-liver_9.nii.gz").write_bytes(b"half")
    root = write_source("msd-spleen", tmp_path / "again", [phantom.case(2, seed=1, classes=("spleen",))])
    convert("msd-spleen", root, 1)
    assert snapshot(folder) == before
