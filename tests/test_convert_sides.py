"""Right and left are the patient's, from world coordinates, whatever the array layout on disk."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conversion import phantom
from conversion.assemble import write_and_convert
from nnunet_clip.geometry import Geometry, body_midline_x
from nnunet_clip.sides import patient_left


@pytest.fixture(autouse=True)
def raw(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))


SIDED = ("right kidney", "left kidney", "right lung", "left lung")


def test_ct_org_stored_ras_splits_kidneys_and_lungs_by_world_side(tmp_path):
    case = phantom.oriented(phantom.case(3, seed=1), "RAS")
    assert case.image.GetDirection() == (-1, 0, 0, 0, -1, 0, 0, 0, 1)  # array x grows to patient's right
    folder = write_and_convert(tmp_path, "ct-org", [case])
    for name in SIDED:
        assert phantom.classes_at(folder, "ct-org_3", phantom.voxel(name)) == {name}


def test_abdomenct_stored_slice_first_ipl(tmp_path):
    case = phantom.oriented(phantom.case(9, seed=2), "IPL")
    folder = write_and_convert(tmp_path, "abdomenct-1k", [case])
    for name in ("right kidney", "left kidney"):
        assert phantom.classes_at(folder, "abdomenct-1k_00009", phantom.voxel(name)) == {name}


def test_kits_ipl_tumour_and_cyst_follow_their_kidney(tmp_path):
    case = phantom.case(7, seed=3, classes=("right kidney", "left kidney"))
    z, y, x = phantom.BLOCKS["left kidney"]
    case.masks["kidney tumor"] = np.zeros(phantom.SHAPE, bool)
    case.masks["kidney tumor"][z, y, x] = True  # in the left kidney
    case.masks["kidney cyst"] = np.zeros(phantom.SHAPE, bool)
    case.masks["kidney cyst"][phantom.HOSTED["kidney cyst"]] = True  # in the right kidney
    folder = write_and_convert(tmp_path, "kits23", [case])
    assert phantom.classes_at(folder, "kits23_00007", (z, y, x)) == {"left kidney", "kidney tumor"}
    assert phantom.classes_at(folder, "kits23_00007", phantom.HOSTED["kidney cyst"]) == {"right kidney",
                                                                                         "kidney cyst"}
    assert phantom.classes_at(folder, "kits23_00007", phantom.voxel("left kidney")) == {"left kidney"}


@pytest.mark.parametrize("body_x, kidney_x, side", [
    ((4, 16), 8, "right kidney"),  # left of the image centre, but right of the body's midline
    ((0, 12), 6, "left kidney"),  # right of the image centre, but left of the body's midline
])
def test_single_kidney_goes_to_its_side_of_the_body_midline(tmp_path, body_x, kidney_x, side):
    case = phantom.case(11, seed=4, classes=(), body_x=body_x)
    kidney = np.zeros(phantom.SHAPE, bool)
    kidney[4:7, 4:7, kidney_x:kidney_x + 2] = True
    case.masks["right kidney"] = kidney
    folder = write_and_convert(tmp_path, "kits19", [case])
    for voxel in np.argwhere(kidney):
        assert phantom.classes_at(folder, "kits19_00011", tuple(voxel)) == {side}


def test_a_component_across_the_midline_is_cut_there():
    image = sitk.GetImageFromArray(np.full((4, 4, 10), 40, np.int16))
    image.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))  # array x grows to the patient's right
    horseshoe = np.zeros((4, 4, 10), bool)
    horseshoe[1:3, 1:3, 2:8] = True  # x 2..7, midline at x 4.5
    geometry = Geometry.of(image)
    left = patient_left(horseshoe, geometry, body_midline_x(sitk.GetArrayViewFromImage(image), geometry))
    assert left[1, 1, 2:5].all() and not left[1, 1, 5:8].any()
    assert not left[~horseshoe].any()
