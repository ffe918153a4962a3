"""Which synthetic cases have which tumours, how many lesions and of what size.

A *lesion plan* maps a tumour class to the diameters (mm) of its lesions in one phantom
(``generate_phantom(seed, lesions=plan)``); a class not in the plan is absent. A ``TumourCohort``
draws the plans of a set of cases: each tumour class in a given share of them, each present class
with a number of lesions and their diameters from its ``LesionProfile``.

The profiles are our choice, after the sizes the real sources report (small liver metastases of a
few millimetres up to masses of several centimetres; renal masses mostly single and 2 to 5 cm;
kidney cysts often several), limited by the phantom's organ sizes (a kidney is about 6 cm wide).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

LESION_STREAM = 20
"""First entry of the seed sequence of the lesion plans, apart from the phantoms' own streams."""

LesionPlan = dict[str, tuple[float, ...]]
"""Tumour class -> diameters (mm) of its lesions in one case."""


@dataclass(frozen=True)
class LesionProfile:
    """How a tumour class appears in a case that has it."""

    count_weights: tuple[float, ...]
    """Relative chance of 1, 2, 3, ... lesions."""
    diameter_mm: tuple[float, float]
    """Range of lesion diameters; drawn log-uniformly (as many small lesions as large ones per octave)."""

    def draw(self, rng: np.random.Generator) -> tuple[float, ...]:
        """Diameters of the lesions of one case, largest first."""
        weights = np.asarray(self.count_weights, float)
        count = 1 + int(rng.choice(len(weights), p=weights / weights.sum()))
        low, high = np.log(self.diameter_mm)
        return tuple(sorted((round(float(d), 1) for d in np.exp(rng.uniform(low, high, count))), reverse=True))


LESION_PROFILES: dict[str, LesionProfile] = {
    "kidney tumor": LesionProfile((0.9, 0.1), (12.0, 50.0)),
    "kidney cyst": LesionProfile((0.5, 0.3, 0.2), (5.0, 30.0)),
    "liver tumor": LesionProfile((0.4, 0.25, 0.2, 0.15), (5.0, 80.0)),
    "hepatic vessel tumor": LesionProfile((0.5, 0.3, 0.2), (8.0, 60.0)),
    "pancreas tumor": LesionProfile((1.0,), (10.0, 35.0)),
    "lung tumor": LesionProfile((0.8, 0.2), (6.0, 50.0)),
    "colon tumor": LesionProfile((1.0,), (15.0, 45.0)),
}
"""Lesions per tumour class, in the phantom's drawing order (``phantom.HOSTED``)."""


def _stochastic_round(x: float, rng: np.random.Generator) -> int:
    """``floor(x)``, plus one with the probability of the fractional part: the expected value is ``x``."""
    whole = int(np.floor(x))
    return whole + int(rng.random() < x - whole)


@dataclass(frozen=True)
class TumourCohort:
    """The tumours of a set of cases: each class in a share of them.

    ``tumour_free`` of the cases have no tumour at all; of the others, ``prevalence[name]`` have
    that class (classes not named: none). Shares are exact where ``share × cases`` is whole and
    rounded at random otherwise, so the expected count is the share; the cases are a seeded
    random choice.
    """

    prevalence: Mapping[str, float]
    tumour_free: float = 0.0
    profiles: Mapping[str, LesionProfile] = field(default_factory=lambda: LESION_PROFILES)

    def plans(self, count: int, seed: int) -> list[LesionPlan]:
        """The lesion plans of ``count`` cases, the same for the same ``seed``."""
        unknown = set(self.prevalence) - set(self.profiles)
        if unknown:
            raise ValueError(f"no lesion profile for {sorted(unknown)}")
        rng = np.random.default_rng([LESION_STREAM, seed])
        order = rng.permutation(count)
        candidates = order[_stochastic_round(self.tumour_free * count, rng):]
        plans: list[LesionPlan] = [{} for _ in range(count)]
        for name, profile in self.profiles.items():
            share = self.prevalence.get(name, 0.0)
            chosen = rng.permutation(candidates)[:_stochastic_round(share * len(candidates), rng)]
            for case in sorted(chosen):
                plans[case][name] = profile.draw(rng)
        return plans
