"""Source-balanced case sampling: a source of N cases is drawn ∝ N^power."""
from __future__ import annotations

from collections import Counter

import pytest

from nnunet_clip.source_sampling import case_source, weighted_identifiers
from nnunet_clip.synthetic.sources import DEMO_SOURCES, one_large_source

CASES = [f"totalsegmentator_s{i:04d}" for i in range(40)] + [f"msd-liver_{i}" for i in range(4)] + ["btcv_0001"]


def source_shares(identifiers: list[str]) -> dict[str, float]:
    counts = Counter(case_source(i) for i in identifiers)
    return {source: n / len(identifiers) for source, n in counts.items()}


@pytest.mark.parametrize("power, expected", [
    (1.0, {"totalsegmentator": 40 / 45, "msd-liver": 4 / 45, "btcv": 1 / 45}),
    (0.5, {"totalsegmentator": 40 ** 0.5 / (40 ** 0.5 + 3), "msd-liver": 2 / (40 ** 0.5 + 3), "btcv": 1 / (40 ** 0.5 + 3)}),
    (0.0, {"totalsegmentator": 1 / 3, "msd-liver": 1 / 3, "btcv": 1 / 3})])
def test_sources_are_drawn_in_proportion_to_their_cases_to_the_power(power, expected):
    weighted = weighted_identifiers(CASES, power)
    assert set(weighted) == set(CASES)
    shares = source_shares(weighted)
    assert shares == pytest.approx(expected, abs=0.01)
    within = Counter(i for i in weighted if case_source(i) == "msd-liver")
    assert len(set(within.values())) == 1  # a source's cases equally often


def test_the_source_of_a_converted_case_is_its_name_before_the_case_number():
    assert [case_source(c) for c in ("msd-liver_7", "kits23_00400", "totalsegmentator_s0001")] == [
        "msd-liver", "kits23", "totalsegmentator"]


def test_the_one_large_source_cohort_gives_half_the_cases_to_abdomenct_1k():
    cohort = {s.name: s.cases for s in one_large_source(47)}
    assert cohort.pop("abdomenct-1k") == 24
    assert list(cohort) == [s.name for s in DEMO_SOURCES]
    assert sum(cohort.values()) == 23 and min(cohort.values()) == 1
    for source in DEMO_SOURCES:  # the rest in the demo's proportions
        assert abs(cohort[source.name] - 23 * source.cases / 47) <= 1, source.name
    assert cohort["totalsegmentator"] == 5 and cohort["word"] == 4
