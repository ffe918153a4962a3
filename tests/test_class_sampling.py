"""Class-balanced foreground patches: a class present in the case is drawn ∝ (cases with it)^-power."""
from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest

from conftest import make_trainer
from nnunet_clip.class_sampling import ClassBalancedCases, cases_per_class, draw_class, present

COMMON, RARE, ABSENT = (1,), (2, 3), (4,)
LOCATIONS = {COMMON: np.zeros((5, 4), int), RARE: np.ones((3, 4), int), ABSENT: np.zeros((0, 4), int)}


def test_cases_are_counted_per_class_with_voxels():
    cases = [LOCATIONS, {COMMON: LOCATIONS[COMMON], RARE: LOCATIONS[ABSENT]}, {COMMON: LOCATIONS[COMMON]}]
    assert cases_per_class(cases) == Counter({COMMON: 3, RARE: 1})


@pytest.mark.parametrize("power, rare_share", [(0.0, 1 / 2), (1.0, 9 / 10), (0.5, 3 / 4)])
def test_a_class_in_fewer_cases_is_drawn_more_often(power, rare_share):
    np.random.seed(0)
    cases = Counter({COMMON: 9, RARE: 1})
    draws = Counter(draw_class(LOCATIONS, cases, power) for _ in range(4000))
    assert set(draws) == {COMMON, RARE}  # never a class without voxels
    assert draws[RARE] / 4000 == pytest.approx(rare_share, abs=0.03)


def test_a_case_without_foreground_draws_nothing():
    assert draw_class({COMMON: LOCATIONS[ABSENT]}, Counter({COMMON: 1}), 1.0) is None


def test_the_trainer_offers_nnunets_loader_one_class_per_case(tiny_preprocessed):
    """With class_sampling_power set, each loaded training case keeps the locations of one present class,
    which nnU-Net's loader then centres its forced-foreground patch on; validation cases are untouched."""
    trainer = make_trainer(tiny_preprocessed)
    trainer.class_sampling_power = 1.0
    trainer.initialize()
    dataset_tr, dataset_val = trainer.get_tr_and_val_datasets()
    assert isinstance(dataset_tr, ClassBalancedCases) and not isinstance(dataset_val, ClassBalancedCases)
    case = dataset_tr.identifiers[0]
    unweighted = type(dataset_val)(dataset_val.source_folder, [case])
    classes = present(unweighted.load_case(case)[3]["class_locations"])
    assert len(classes) > 1
    np.random.seed(0)
    chosen = Counter()
    for _ in range(60):
        locations = dataset_tr.load_case(case)[3]["class_locations"]
        assert len(locations) == 1
        chosen.update(locations)
    assert set(chosen) == set(classes)  # every present class gets its turn
    assert pickle.loads(pickle.dumps(dataset_tr)).cases_per_class == dataset_tr.cases_per_class  # for DA workers
