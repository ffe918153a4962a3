"""Lesion matching, lesion-level aggregates, size bins, presence scores and ROC against hand-computed values."""
import math

import numpy as np
import pytest

from nnunet_clip.evaluation.detection import (LARGE_LESIONS, SIZE_BINS, equivalent_diameter_mm, lesion_scores,
                                              match_lesions, presence_score, roc, size_bin)

SPACING = (2.0, 1.0, 1.0)  # z, y, x: a voxel is 2 mm3 = 0.002 ml


def boxes(*slices):
    mask = np.zeros((10, 30, 30), bool)
    for box in slices:
        mask[box] = True
    return mask


BIG = (slice(0, 5), slice(0, 10), slice(0, 10))  # 500 voxels = 1 ml
MEDIUM = (slice(0, 2), slice(20, 25), slice(0, 5))  # 50 voxels = 0.1 ml
SMALL = (slice(8, 9), slice(20, 21), slice(20, 21))  # 1 voxel


def test_lesions_matched_by_overlap_with_predicted_lesions_above_the_minimum():
    ref = boxes(BIG, MEDIUM, SMALL)
    pred = boxes((slice(4, 6), slice(9, 12), slice(9, 12)),  # shares one voxel with BIG: detects it
                 (slice(8, 9), slice(20, 21), slice(20, 22)),  # 2 voxels on SMALL: under 0.01 ml, not a lesion
                 (slice(6, 9), slice(0, 10), slice(20, 30)))  # 300 voxels far from all: a false positive
    m = match_lesions(ref, pred, SPACING, min_ml=0.01)
    assert [lesion["detected"] for lesion in m["lesions"]] == [True, False, False]  # largest first
    assert [lesion["volume_ml"] for lesion in m["lesions"]] == pytest.approx([1.0, 0.1, 0.002])
    assert m["lesions"][0]["diameter_mm"] == pytest.approx((6000 / math.pi) ** (1 / 3), abs=0.01)
    assert m["pred_lesions"] == 2 and m["false_positive_lesions"] == 1
    assert m["pred_largest_component_ml"] == pytest.approx(0.6)
    m = match_lesions(ref, pred, SPACING, min_ml=0.0)  # now the 2-voxel component counts and detects SMALL
    assert [lesion["detected"] for lesion in m["lesions"]] == [True, False, True]
    assert m["pred_lesions"] == 3 and m["false_positive_lesions"] == 1


def test_one_predicted_lesion_over_two_reference_lesions_detects_both():
    ref = boxes((slice(0, 3), slice(0, 3), slice(0, 3)), (slice(0, 3), slice(0, 3), slice(5, 8)))
    pred = boxes((slice(0, 3), slice(0, 3), slice(0, 8)))
    m = match_lesions(ref, pred, SPACING, min_ml=0.0)
    assert [lesion["detected"] for lesion in m["lesions"]] == [True, True]
    assert m["pred_lesions"] == 1 and m["false_positive_lesions"] == 0


def test_empty_masks_have_no_lesions():
    empty = np.zeros((0, 0, 0), bool)  # a class absent from both maps is scored in an empty box
    assert match_lesions(empty, empty, SPACING, 0.1) == {"lesions": [], "pred_lesions": 0,
                                                         "false_positive_lesions": 0, "pred_largest_component_ml": 0.0}


def test_size_bins_and_equivalent_diameter():
    assert SIZE_BINS == ("<10", "10-20", "20-50", ">=50")
    assert [size_bin(d) for d in (0.0, 9.99, 10.0, 19.9, 20.0, 49.9, 50.0, 300.0)] == \
        ["<10", "<10", "10-20", "10-20", "20-50", "20-50", ">=50", ">=50"]
    assert equivalent_diameter_mm(math.pi / 6 * 1e-3 * 20 ** 3) == pytest.approx(20.0)


def test_lesion_scores_recall_by_size_and_false_positives_per_case():
    def lesion(d, found):
        return {"volume_ml": 0.0, "diameter_mm": d, "detected": found}
    cases = [{"lesions": [lesion(5, False), lesion(15, True)], "false_positive_lesions": 1},
             {"lesions": [lesion(60, True), lesion(12, False)], "false_positive_lesions": 0},
             {"lesions": [], "false_positive_lesions": 2}]
    s = lesion_scores(cases)
    assert (s["lesions"], s["detected"], s["recall"]) == (4, 2, 0.5)
    assert s[LARGE_LESIONS] == {"lesions": 3, "detected": 2, "recall": pytest.approx(2 / 3)}
    assert s["by_diameter_mm"]["<10"] == {"lesions": 1, "detected": 0, "recall": 0.0}
    assert s["by_diameter_mm"]["10-20"]["recall"] == 0.5 and s["by_diameter_mm"][">=50"]["recall"] == 1.0
    assert s["by_diameter_mm"]["20-50"] == {"lesions": 0, "detected": 0, "recall": None}  # undefined, not 0
    assert s["false_positives"] == 3 and s["false_positives_per_case"] == 1.0
    none = lesion_scores([{"lesions": [], "false_positive_lesions": 0}] * 2)
    assert none["recall"] is None and none["false_positives_per_case"] == 0.0


def test_presence_score_is_the_maximum_inside_the_region():
    p = np.array([[0.9, 0.2], [0.4, 0.1]], np.float32)
    assert presence_score(p, np.array([[False, True], [True, True]])) == pytest.approx(0.4)
    assert presence_score(p, None) == pytest.approx(0.9)
    assert presence_score(p, np.zeros((2, 2), bool)) == 0.0


def test_roc_auc_by_hand():
    r = roc([True, True, True, False, False], [0.9, 0.4, 0.4, 0.4, 0.1])
    # pairs (pos, neg): 0.9 beats both (2); each 0.4 ties 0.4 (0.5) and beats 0.1 (1): 2 + 2 * 1.5 = 5 of 6
    assert r["auc"] == pytest.approx(5 / 6)
    assert r["fpr"][0] == 0 and r["tpr"][0] == 0 and r["fpr"][-1] == 1 and r["tpr"][-1] == 1
    assert roc([True, True], [0.3, 0.9]) == {"auc": None, "fpr": None, "tpr": None}
    assert roc([False, False], [0.3, 0.9])["auc"] is None
    assert roc([True, False], [0.2, 0.8])["auc"] == 0.0
