"""Post-processing and statistics on constructed masks: islands, swapped sides, tumours outside organs."""
from __future__ import annotations

import numpy as np
import pytest

from nnunet_clip.geometry import Geometry, body_midline_x
from nnunet_clip.inference.postprocessing import correct_sides, place_in_hosts, postprocess
from nnunet_clip.inference.statistics import case_statistics

SHAPE = (20, 30, 40)  # z, y, x
LPS = Geometry(spacing=(1.0, 1.0, 2.0), origin=(-20.0, -15.0, 0.0))
RAS_X = Geometry(spacing=(1.0, 1.0, 2.0), origin=(20.0, -15.0, 0.0), direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1))
"""Array x runs to the patient's right: array column 5 is on the patient's left."""


def box(z, y, x) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[z[0]:z[1], y[0]:y[1], x[0]:x[1]] = True
    return mask


def test_spurious_island_removed_from_single_organ_and_tiny_tumour_dropped():
    liver = box((2, 12), (5, 20), (2, 16))
    island = box((15, 17), (25, 27), (30, 32))
    tumour = box((4, 7), (8, 11), (5, 8))
    speck = box((10, 11), (10, 11), (10, 11))  # 2 mm³: under the 10 mm³ tumour minimum
    out = postprocess({"liver": liver | island, "liver tumor": tumour | speck}, LPS, midline_x=0.0)
    assert np.array_equal(out["liver"], liver)
    assert np.array_equal(out["liver tumor"], tumour)


def test_a_single_organ_keeps_every_component_tied_for_largest_whichever_way_it_is_stored():
    """Which of two equal components came first would depend on the array order, that is, on storage."""
    a, b = box((2, 5), (2, 5), (2, 5)), box((10, 13), (20, 23), (30, 33))
    smaller = box((15, 17), (5, 7), (5, 7))
    for flip in ((), (0,), (2,), (0, 1, 2)):
        mask = np.flip(a | b | smaller, flip)
        assert np.array_equal(postprocess({"spleen": mask}, LPS, midline_x=0.0)["spleen"], np.flip(a | b, flip))


def test_multi_part_organ_keeps_large_pieces_only():
    pieces = box((2, 6), (2, 12), (2, 10)) | box((10, 14), (2, 12), (20, 30))
    speck = box((18, 19), (28, 29), (38, 39))
    out = postprocess({"intestine": pieces | speck}, LPS, midline_x=0.0)
    assert np.array_equal(out["intestine"], pieces)


@pytest.mark.parametrize("geometry", [LPS, RAS_X], ids=["LPS", "x-flipped"])
def test_swapped_kidneys_go_to_the_patients_side(geometry):
    low_x, high_x = box((5, 12), (10, 20), (4, 10)), box((5, 12), (10, 20), (30, 36))
    # world x of a column c: LPS -20 + 1 * c; flipped 20 - c. The midline is world x 0 in both.
    patients_right, patients_left = (low_x, high_x) if geometry is LPS else (high_x, low_x)
    right, left = correct_sides(patients_left, patients_right, geometry, midline_x=0.0)
    assert np.array_equal(right, patients_right) and np.array_equal(left, patients_left)


def test_one_component_on_the_wrong_side_moves_and_the_rest_stays():
    right_kidney, left_kidney = box((5, 12), (10, 20), (4, 10)), box((5, 12), (10, 20), (30, 36))
    out = postprocess({"right kidney": right_kidney | left_kidney, "left kidney": np.zeros(SHAPE, bool)},
                      LPS, midline_x=0.0)
    assert np.array_equal(out["right kidney"], right_kidney)
    assert np.array_equal(out["left kidney"], left_kidney)


def test_tumour_outside_its_organ_removed_touching_one_kept_and_added_to_its_organ():
    kidney = box((5, 12), (10, 20), (4, 10))
    inside = box((7, 9), (12, 15), (5, 8))
    touching = box((6, 9), (20, 23), (5, 8))   # starts at the row after the kidney ends
    outside = box((14, 18), (22, 28), (25, 32))
    masks = {"right kidney": kidney, "left kidney": np.zeros(SHAPE, bool), "kidney tumor": inside | touching | outside}
    out = postprocess(masks, LPS, midline_x=0.0)
    assert np.array_equal(out["kidney tumor"], inside | touching)
    assert np.array_equal(out["right kidney"], kidney | touching)  # organ ∪ tumour is the organ
    assert not out["left kidney"].any()


def test_a_lesion_touching_two_hosts_joins_the_one_it_touches_most():
    right, left = box((2, 12), (2, 10), (2, 8)), box((2, 12), (13, 21), (2, 8))
    lesion = box((4, 10), (10, 14), (4, 7))  # next to both; its last row overlaps the left host
    far = box((14, 18), (22, 28), (25, 32))
    kept, out = place_in_hosts(lesion | far, {"right kidney": right, "left kidney": left})
    assert np.array_equal(kept, lesion)  # the component far from both hosts is removed
    assert np.array_equal(out["left kidney"], left | lesion)
    assert np.array_equal(out["right kidney"], right)
    assert np.array_equal(left, box((2, 12), (13, 21), (2, 8)))  # the caller's host mask is not changed


def test_tumour_kept_when_its_host_was_not_computed():
    tumour = box((7, 10), (12, 15), (5, 8))
    assert np.array_equal(postprocess({"liver tumor": tumour}, LPS, 0.0)["liver tumor"], tumour)


def test_statistics_volume_mean_hu_count_and_diameter():
    image = np.full(SHAPE, -100, dtype=np.int16)
    liver = box((2, 12), (5, 20), (2, 16))
    image[liver] = 60
    tumours = box((4, 7), (8, 11), (5, 8)) | box((2, 12), (25, 26), (30, 31))
    stats = case_statistics({"liver": liver, "liver tumor": tumours}, image, LPS)
    assert stats["liver"]["volume_ml"] == pytest.approx(10 * 15 * 14 * 2 / 1000)
    assert stats["liver"]["mean_hu"] == 60.0
    assert stats["liver tumor"]["count"] == 2
    # the 10-slice column: centres 9 slices × 2 mm apart
    assert stats["liver tumor"]["largest_diameter_mm"] == pytest.approx(18.0)
    assert [lesion["volume_ml"] for lesion in stats["liver tumor"]["lesions"]] == [0.054, 0.02]  # largest first
    assert [lesion["host"] for lesion in stats["liver tumor"]["lesions"]] == ["liver", None]  # the column is outside
    empty = case_statistics({"liver tumor": np.zeros(SHAPE, bool)}, image, LPS)["liver tumor"]
    assert empty == {"volume_ml": 0.0, "mean_hu": None, "count": 0, "largest_diameter_mm": None, "lesions": []}


def test_statistics_of_each_lesion_its_host_and_the_presence_score():
    image = np.zeros(SHAPE, dtype=np.int16)
    right, left = box((5, 12), (10, 20), (4, 10)), box((5, 12), (10, 20), (30, 36))
    inside_left = box((6, 8), (12, 14), (31, 33))  # 8 voxels = 16 mm³
    touching_right = box((6, 9), (20, 23), (5, 8))  # the row after the right kidney ends: 27 voxels
    masks = {"right kidney": right, "left kidney": left, "kidney tumor": inside_left | touching_right}
    probabilities = np.zeros(SHAPE, np.uint8)
    probabilities[0, 0, 0] = 255  # outside kidneys and tumour: not read
    probabilities[7, 21, 6] = 200  # in the touching lesion
    stats = case_statistics({"kidney tumor": masks["kidney tumor"]}, image, LPS, computed=masks,
                            probabilities={"kidney tumor": probabilities})["kidney tumor"]
    assert stats["count"] == 2 and stats["presence_score"] == round(200 / 255, 3)
    # corner-to-corner distances between voxel centres, z spacing 2 mm: (2, 2, 2 × 2) and (1, 1, 1 × 2) mm
    assert stats["lesions"] == [{"volume_ml": 0.054, "largest_diameter_mm": round(np.sqrt(4 + 4 + 16), 2),
                                 "host": "right kidney"},
                                {"volume_ml": 0.016, "largest_diameter_mm": round(np.sqrt(1 + 1 + 4), 2),
                                 "host": "left kidney"}]
    no_host = case_statistics(masks, image, LPS, computed={"kidney tumor": masks["kidney tumor"]},
                              probabilities={"kidney tumor": probabilities})["kidney tumor"]
    assert no_host["presence_score"] == 1.0  # no host computed: the whole image
    assert [lesion["host"] for lesion in no_host["lesions"]] == [None, None]


def test_body_midline_from_intensities():
    image = np.full(SHAPE, -1000, dtype=np.int16)
    image[:, :, 10:31] = 40  # body columns 10..30: centre column 20, world x 0 in LPS
    assert body_midline_x(image, LPS) == pytest.approx(0.0)
    assert body_midline_x(image, RAS_X) == pytest.approx(0.0)


def test_lungs_joined_across_the_midline_are_cut_there():
    joined = box((5, 12), (10, 20), (4, 36))  # one component, columns 4..35; world x 0 (the midline) is column 20
    right, left = correct_sides(joined, np.zeros(SHAPE, bool), LPS, midline_x=0.0)
    columns = np.arange(SHAPE[2])[None, None, :]
    assert np.array_equal(right, joined & (columns <= 20)) and np.array_equal(left, joined & (columns > 20))


def test_prediction_splits_sides_as_the_converters_do():
    import SimpleITK as sitk

    from dataset_conversion.labels import DEFAULT_ATOMS, LabelMap

    rng = np.random.default_rng(0)
    lungs = box((5, 12), (10, 20), (4, 36)) | box((14, 18), (2, 6), (2, 8)) | box((14, 18), (22, 26), (30, 33))
    lungs &= rng.random(SHAPE) > 0.2  # ragged components, some cut by the midline
    image = sitk.GetImageFromArray(np.full(SHAPE, 40, np.int16))
    image.SetSpacing(RAS_X.spacing), image.SetOrigin(RAS_X.origin), image.SetDirection(RAS_X.direction)
    atoms = DEFAULT_ATOMS.to_atoms(LabelMap(lungs.astype(np.uint8), {1: ("lung",)}), image)
    right, left = correct_sides(lungs, np.zeros(SHAPE, bool), RAS_X, body_midline_x(np.full(SHAPE, 40), RAS_X))
    assert np.array_equal(atoms == DEFAULT_ATOMS.value[frozenset({"right lung"})], right)
    assert np.array_equal(atoms == DEFAULT_ATOMS.value[frozenset({"left lung"})], left)
    assert right.any() and left.any()


def test_hepatic_vessel_outside_the_liver_removed():
    liver = box((2, 12), (5, 20), (2, 16))
    inside = box((4, 8), (8, 12), (4, 12))
    far = box((14, 19), (22, 28), (25, 32))  # a femoral head, say
    out = postprocess({"liver": liver, "hepatic vessel": inside | far}, LPS, midline_x=0.0)
    assert np.array_equal(out["hepatic vessel"], inside)
