"""Tumour cohorts of the synthetic sources: shares of cases, lesion counts and sizes, lesions inside
their hosts, sources sized as the real downloads, held-out scans with and without tumours."""
import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from nnunet_clip.synthetic.lesions import LESION_PROFILES, LesionProfile, TumourCohort
from nnunet_clip.synthetic.phantom import generate_phantom
from nnunet_clip.synthetic.sources import (DEMO_SOURCES, HELDOUT_TUMOURS, REAL_CASES, SOURCE_PREVALENCE,
                                           TUMOUR_SOURCES, tumour_sources, write_heldout)
from nnunet_clip.taxonomy import PARENTS, TUMORS


def lesion_diameters_mm(phantom, name):
    """Equivalent-ball diameter of each 26-connected component of a class, largest first."""
    labels, _ = ndimage.label(phantom.masks[name], np.ones((3, 3, 3)))
    voxel_mm3 = np.prod(phantom.image.GetSpacing())
    return sorted(((6 * n * voxel_mm3 / np.pi) ** (1 / 3) for n in np.bincount(labels.ravel())[1:]), reverse=True)


def test_cohort_shares_are_exact_and_seeded():
    plans = HELDOUT_TUMOURS.plans(24, seed=7)
    assert plans == HELDOUT_TUMOURS.plans(24, seed=7) and plans != HELDOUT_TUMOURS.plans(24, seed=8)
    assert sum(not plan for plan in plans) == 6  # a quarter tumour-free
    for name in TUMORS:
        assert sum(name in plan for plan in plans) == 9, name  # half of the other 18
    for plan in plans:
        for name, diameters in plan.items():
            low, high = LESION_PROFILES[name].diameter_mm
            assert 1 <= len(diameters) <= len(LESION_PROFILES[name].count_weights)
            assert all(low <= d <= high for d in diameters) and list(diameters) == sorted(diameters, reverse=True)
    sizes = [d for plan in plans for ds in plan.values() for d in ds]
    assert min(sizes) < 10 and max(sizes) > 40  # small lesions and masses of several cm


def test_cohort_rejects_a_class_without_profile():
    with pytest.raises(ValueError, match="no lesion profile for \\['liver'\\]"):
        TumourCohort({"liver": 0.5}).plans(3, seed=0)
    single = TumourCohort({"liver tumor": 1.0}, profiles={"liver tumor": LesionProfile((0.0, 1.0), (20.0, 20.0))})
    assert single.plans(2, seed=0) == [{"liver tumor": (20.0, 20.0)}] * 2


def test_planned_lesions_are_separate_components_inside_their_hosts():
    plan = {"liver tumor": (40.0, 20.0, 6.0), "kidney tumor": (30.0,), "kidney cyst": (15.0, 10.0),
            "lung tumor": (25.0,)}
    p = generate_phantom(11, lesions=plan)
    again = generate_phantom(11, lesions=plan)
    assert np.array_equal(sitk.GetArrayViewFromImage(p.image), sitk.GetArrayViewFromImage(again.image))
    for name in TUMORS:
        host = np.logical_or.reduce([p.masks[h] for h in PARENTS[name]])
        assert not (p.masks[name] & ~host).any(), name
        diameters = lesion_diameters_mm(p, name)
        assert len(diameters) == len(plan.get(name, ())), name  # absent where not planned
        for planned, drawn in zip(plan.get(name, ()), diameters):
            assert drawn == pytest.approx(planned, rel=0.5) or planned < 10, (name, planned, drawn)
    with pytest.raises(ValueError, match="not tumours or cysts"):
        generate_phantom(11, lesions={"liver": (10.0,)})


def test_tumour_sources_share_cases_as_the_real_downloads():
    counts = {s.name: s.cases for s in tumour_sources(150)}
    assert sum(counts.values()) == 150 and min(counts.values()) >= 1
    total = sum(REAL_CASES.values())
    for name, n in counts.items():
        assert abs(n - 150 * REAL_CASES[name] / total) <= 1, name
    assert [s.name for s in TUMOUR_SOURCES] == [s.name for s in DEMO_SOURCES]
    assert sum(s.cases for s in TUMOUR_SOURCES) == sum(s.cases for s in DEMO_SOURCES)
    assert [s.orientation for s in TUMOUR_SOURCES] == [s.orientation for s in DEMO_SOURCES]
    kits = next(s for s in tumour_sources(150) if s.name == "kits23")
    plans = kits.tumours.plans(kits.cases, seed=0)
    assert all("kidney tumor" in plan for plan in plans)  # every KiTS case has its tumour
    assert SOURCE_PREVALENCE["msd-liver"]["liver tumor"] >= 0.9
    with pytest.raises(ValueError, match="cannot give each"):
        tumour_sources(5)


def test_heldout_with_tumour_cohort(tmp_path):
    phantoms = write_heldout(tmp_path, 8, seed=30, tumours=HELDOUT_TUMOURS, shape=(24, 28, 32))
    plans = HELDOUT_TUMOURS.plans(8, seed=30)
    assert [sorted(n for n in TUMORS if p.masks[n].any()) for p in phantoms] == [sorted(plan) for plan in plans]
    assert sum(not plan for plan in plans) == 2  # tumour-free scans
    dataset = json.loads((tmp_path / "dataset.json").read_text())
    assert all(len(v) == 32 for v in dataset["annotated_classes"].values())
