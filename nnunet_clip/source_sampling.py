"""Training cases drawn source by source: a source of N training cases is drawn with probability
∝ N^power, then one of its cases uniformly (power 1: nnU-Net's uniform case sampling; 0.5: MultiTalent's
√N; 0: every source equally often, as the original Universal Model samples its datasets).

nnU-Net's data loader draws uniformly from its dataset's identifiers, so the weights are given as
repetitions of each identifier in that list. A case's source is its identifier up to the last
underscore, as ``nnunet-clip convert`` names cases (``btcv_0001``, ``msd-liver_7``).
"""
from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

RESOLUTION = 8
"""Repetitions of the least likely case: the weights are rounded to 1/RESOLUTION of it."""


def case_source(identifier: str) -> str:
    return identifier.rsplit("_", 1)[0]


def repeated(identifiers: Sequence[str], weight: Mapping[str, float]) -> list[str]:
    """``identifiers`` with each entry repeated in proportion to its ``weight`` (the least likely one with a
    positive weight RESOLUTION times; a weight of 0 leaves the entry out)."""
    smallest = min(w for w in weight.values() if w > 0)
    return [i for i in identifiers for _ in range(round(RESOLUTION * weight[i] / smallest))]


def weighted_identifiers(identifiers: Sequence[str], power: float) -> list[str]:
    """``identifiers`` with each case repeated in proportion to N^power / N, N its source's cases."""
    counts = Counter(case_source(i) for i in identifiers)
    return repeated(identifiers, {i: counts[case_source(i)] ** (power - 1) for i in identifiers})
