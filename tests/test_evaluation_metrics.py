"""DSC, NSD and detection primitives against hand-computed values and MONAI (an independent implementation)."""
import math
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_surface_dice

from nnunet_clip.errors import InputError
from nnunet_clip.evaluation.detection import detection_scores, largest_component_ml
from nnunet_clip.evaluation.metrics import dice, normalized_surface_dice
from nnunet_clip.evaluation.tolerances import DEFAULT_TOLERANCE_MM, parse_tolerances, tolerance_mm


def box(shape, lo, hi):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return mask


def ball(shape, centre, radius_mm, spacing):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing)) <= radius_mm ** 2


def onehot(mask):
    return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))


def monai_nsd(ref, pred, spacing, tolerance):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns about empty masks
        return compute_surface_dice(onehot(pred), onehot(ref), [tolerance], spacing=spacing).item()


def monai_dice(ref, pred, ignore_empty=False):
    return compute_dice(onehot(pred), onehot(ref), include_background=False, ignore_empty=ignore_empty).item()


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-6)  # MONAI returns float32


def test_offset_cubes_dice_by_hand_and_monai():
    ref = box((20, 20, 20), (5, 5, 5), (15, 15, 15))
    pred = box((20, 20, 20), (5, 5, 7), (15, 15, 17))  # shifted by 2 voxels in x: overlap 10*10*8
    assert dice(ref, pred) == pytest.approx(0.8)
    assert monai_dice(ref, pred) == pytest.approx(0.8)


@pytest.mark.parametrize("spacing, tolerance", [((1, 1, 1), 2.0), ((1, 1, 1), 1.9), ((3, 1, 1), 2.0)])
def test_shift_within_tolerance_gives_nsd_one_only_if_tolerance_covers_it(spacing, tolerance):
    """A box shifted by 2 voxels in x (2 mm): every surface voxel is within 2 mm of the other surface."""
    ref = box((12, 20, 20), (3, 5, 5), (9, 15, 15))
    pred = box((12, 20, 20), (3, 5, 7), (9, 15, 17))
    expected = monai_nsd(ref, pred, spacing, tolerance)
    assert normalized_surface_dice(ref, pred, spacing, tolerance) == pytest.approx(expected)
    assert (expected == 1.0) == (tolerance >= 2.0)


def test_anisotropic_shift_by_hand():
    """1x1x3 mm (x, y, z): a 6x6x4-voxel box shifted by one slice (3 mm) fails a 2 mm tolerance on its
    two end slices only (36 of 112 surface voxels on each side): NSD = (76 + 76) / 224; the same shift
    along x (1 mm) passes everywhere."""
    spacing = (3.0, 1.0, 1.0)  # array order z, y, x
    ref = box((9, 10, 10), (2, 2, 2), (6, 8, 8))
    along_z = box((9, 10, 10), (3, 2, 2), (7, 8, 8))
    along_x = box((9, 10, 10), (2, 2, 3), (6, 8, 9))
    assert normalized_surface_dice(ref, along_z, spacing, 2.0) == pytest.approx(152 / 224)
    assert monai_nsd(ref, along_z, spacing, 2.0) == pytest.approx(152 / 224)
    assert normalized_surface_dice(ref, along_z, spacing, 3.0) == 1.0
    assert normalized_surface_dice(ref, along_x, spacing, 2.0) == 1.0
    assert dice(ref, along_z) == pytest.approx(0.75)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8), (0.7, 1.3, 3.0)])
@pytest.mark.parametrize("tolerance", [0.0, 1.0, 2.5])
def test_sphere_vs_shifted_sphere_matches_monai(spacing, tolerance):
    shape = (24, 30, 30)
    ref = ball(shape, (12, 15, 15), 9.0, spacing)
    pred = ball(shape, (13, 14, 17), 8.0, spacing)
    assert normalized_surface_dice(ref, pred, spacing, tolerance) == pytest.approx(monai_nsd(ref, pred, spacing, tolerance))
    assert dice(ref, pred) == pytest.approx(monai_dice(ref, pred))
    assert 0 < normalized_surface_dice(ref, pred, spacing, tolerance) < 1


def test_random_blobs_touching_the_border_match_monai():
    rng = np.random.default_rng(0)
    for _ in range(10):
        shape = tuple(rng.integers(6, 16, 3))
        spacing = tuple(rng.choice([0.5, 1.0, 2.5, 5.0], 3))
        ref, pred = rng.random(shape) < 0.3, rng.random(shape) < 0.3  # many tiny components, on the array border too
        tolerance = float(rng.choice([0.0, 1.0, 3.0]))
        assert same(normalized_surface_dice(ref, pred, spacing, tolerance), monai_nsd(ref, pred, spacing, tolerance))


def test_identical_masks_score_one_even_at_zero_tolerance():
    ref = ball((10, 10, 10), (5, 5, 5), 3.0, (1, 1, 1))
    assert normalized_surface_dice(ref, ref.copy(), (1, 1, 1), 0.0) == 1.0
    assert dice(ref, ref.copy()) == 1.0


def test_empty_masks():
    empty, full = np.zeros((6, 6, 6), bool), box((6, 6, 6), (1, 1, 1), (4, 4, 4))
    # both empty: undefined (NaN), as MONAI's ignore_empty=True and its NSD; one empty: 0
    assert math.isnan(dice(empty, empty)) and math.isnan(monai_dice(empty, empty, ignore_empty=True))
    assert math.isnan(normalized_surface_dice(empty, empty, (1, 1, 3), 2.0))
    assert math.isnan(monai_nsd(empty, empty, (1, 1, 3), 2.0))
    for ref, pred in ((empty, full), (full, empty)):
        assert dice(ref, pred) == 0.0 == monai_dice(ref, pred)
        assert normalized_surface_dice(ref, pred, (1, 1, 3), 2.0) == 0.0 == monai_nsd(ref, pred, (1, 1, 3), 2.0)


def test_largest_component_uses_26_connectivity_and_spacing():
    mask = np.zeros((10, 10, 10), bool)
    mask[0:2, 0:2, 0:2] = True                   # 8 voxels
    mask[2, 2, 2] = True                          # touches the first block at a corner only: 9
    mask[6:9, 6:9, 6:9] = True                    # 27 voxels, the largest
    assert largest_component_ml(mask, (2.0, 1.0, 0.5)) == pytest.approx(27 * 1.0 / 1000)
    mask[6:9, 6:9, 6:9] = False
    assert largest_component_ml(mask, (2.0, 1.0, 0.5)) == pytest.approx(9 * 1.0 / 1000)
    assert largest_component_ml(np.zeros((3, 3, 3), bool), (1, 1, 1)) == 0.0


def test_detection_scores():
    d = detection_scores([True, True, True, False, False], [True, False, True, False, True])
    assert (d["tp"], d["fn"], d["tn"], d["fp"], d["cases"]) == (2, 1, 1, 1, 5)
    assert d["sensitivity"] == pytest.approx(2 / 3) and d["specificity"] == pytest.approx(1 / 2)
    assert d["harmonic_mean"] == pytest.approx(4 / 7)
    only_positive = detection_scores([True, True], [True, False])
    assert only_positive["sensitivity"] == 0.5 and only_positive["specificity"] is None
    assert only_positive["harmonic_mean"] is None
    assert detection_scores([True, False], [False, True])["harmonic_mean"] == 0.0


def test_tolerances():
    assert DEFAULT_TOLERANCE_MM["liver"] == 3.0 and DEFAULT_TOLERANCE_MM["aorta"] == 1.5
    assert DEFAULT_TOLERANCE_MM["pancreas"] == 2.0 and DEFAULT_TOLERANCE_MM["kidney cyst"] == 5.0
    assert len(DEFAULT_TOLERANCE_MM) == 32
    overrides = parse_tolerances(["IVC=1", "liver tumour=7.5"])
    assert overrides == {"postcava": 1.0, "liver tumor": 7.5}
    assert tolerance_mm("inferior vena cava", overrides) == 1.0 and tolerance_mm("aorta", overrides) == 1.5
    assert tolerance_mm("my custom organ") == 2.0 and tolerance_mm("Postcava", {"ivc": 0.5}) == 0.5
    for bad in ("liver", "liver=", "=2", "liver=-1", "liver=inf", "liver=abc"):
        with pytest.raises(InputError, match="--tolerance"):
            parse_tolerances([bad])
