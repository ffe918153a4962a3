"""One scan in two sources becomes one case: recognised from its voxels, annotated classes united."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conversion import phantom
from dataset_conversion.provenance import Provenance
from conversion.assemble import write_and_convert
from nnunet_clip.taxonomy import atom_table


@pytest.fixture(autouse=True)
def raw(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))


def arrays(folder, case_id):
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "imagesTr" / f"{case_id}_0000.nii.gz")))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / f"{case_id}.nii.gz")))
    return image, label


def region(folder, label, name):
    table = atom_table(phantom.dataset_json(folder)["labels"])
    return np.isin(label, [v for v, classes in table.items() if name in classes])


def test_lits_and_msd_liver_become_one_case_with_the_conflict_written_down(tmp_path):
    lits = phantom.case(5, seed=10, classes=("liver", "liver tumor", "spleen"))
    msd = phantom.case(5, seed=10, classes=("liver", "liver tumor", "spleen"))
    extra = tuple(np.add(phantom.BLOCKS["liver"], (1, 1, 1)))
    msd.masks["liver tumor"][extra] = True  # MSD's copy: one tumour voxel more
    write_and_convert(tmp_path, "lits", [lits])
    folder = write_and_convert(tmp_path, "msd-liver", [msd], input_name="msd")
    meta = phantom.dataset_json(folder)
    assert list(meta["annotated_classes"]) == ["lits_5"]
    assert meta["numTraining"] == 1
    record = Provenance.load(folder)
    assert [r["source"] for r in record.sources["lits_5"]] == ["lits", "msd-liver"]
    assert record.conflicts["lits_5"] == [
        {"class": "liver tumor", "voxels": 1, "sources": ["lits", "msd-liver"], "kept": "lits"}]
    assert phantom.classes_at(folder, "lits_5", extra) == {"liver"}  # the first copy's label is kept
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == ["lits_5_0000.nii.gz"]


def test_ircadb_joins_lits_volume_with_identity_header_and_adds_its_organs(tmp_path):
    """LiTS 28-47 carry identity affines (1 mm, RAS); 3D-IRCADb has the true geometry."""
    classes = ("liver", "liver tumor", "spleen", "right kidney", "left kidney", "stomach")
    write_and_convert(tmp_path, "lits", [phantom.case(30, seed=11, classes=classes)])
    folder = write_and_convert(tmp_path, "ircadb", [phantom.case(3, seed=11, classes=classes)])
    meta = phantom.dataset_json(folder)
    assert list(meta["annotated_classes"]) == ["lits_30"]
    assert meta["annotated_classes"]["lits_30"] == [  # IRCADb annotates the organs it has a mask folder of
        "spleen", "right kidney", "left kidney", "liver", "stomach", "liver tumor"]
    assert Provenance.load(folder).conflicts == {}
    image, label = arrays(folder, "lits_30")
    for name in ("spleen", "right kidney", "left kidney", "stomach", "liver"):
        low = 20 + phantom.hu_offset(name)
        block = (image >= low) & (image < low + 40)
        assert block.sum() == 8 and np.array_equal(region(folder, label, name), block), name
    assert region(folder, label, "liver tumor").sum() == 1


def test_different_scans_of_one_shape_stay_apart(tmp_path):
    cases = [phantom.case(n, seed=n, classes=("spleen",)) for n in (2, 3)]
    folder = write_and_convert(tmp_path, "msd-spleen", cases)
    assert list(phantom.dataset_json(folder)["annotated_classes"]) == ["msd-spleen_2", "msd-spleen_3"]
