"""Synthetic source datasets in their real layouts, and a fully labelled held-out set.

Every phantom contains all organs; each source's files show only what that source annotates
(``layouts.write_source``), in the source's own label values and on-disk orientation. The
held-out scans are written as an nnU-Net raw test set (``imagesTs``, ``labelsTs`` with the
universal label atoms, and a dataset.json annotating every class) that ``nnunet-clip evaluate``
reads.

Tumours: by default each phantom has each tumour type with the phantom's own probability
(``DEMO_SOURCES``, ``write_heldout`` without ``tumours``). A source or held-out set with a
``lesions.TumourCohort`` has them in the cohort's shares instead, with realistic lesion counts and
sizes: ``tumour_sources(total)`` shares cases among the sources as the real downloads do, with
each tumour source's tumour in (nearly) all of its cases; ``HELDOUT_TUMOURS`` gives held-out
scans in which every tumour type is present in some and absent in others.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from nnunet_clip.synthetic.layouts import SourceCase, write_source
from nnunet_clip.synthetic.lesions import LESION_PROFILES, TumourCohort
from nnunet_clip.synthetic.phantom import Phantom, generate_phantom
from nnunet_clip.taxonomy import CLASS_NAMES, PARENTS, atom_table, dataset_labels


@dataclass(frozen=True)
class SyntheticSource:
    """A source to imitate: its ``nnunet-clip convert`` name, number of cases, image orientation, tumours."""

    name: str
    cases: int
    orientation: str = "LPS"
    tumours: TumourCohort | None = None
    """The tumours of its cases; None: each phantom's default random ones."""


DEMO_SOURCES: tuple[SyntheticSource, ...] = (
    SyntheticSource("totalsegmentator", 10, "RAS"),
    SyntheticSource("amos22", 4, "LPS"),
    SyntheticSource("btcv", 3, "RAS"),
    SyntheticSource("word", 8, "LPS"),
    SyntheticSource("abdomenct-12organ", 6, "RAI"),
    SyntheticSource("msd-liver", 2, "RAS"),
    SyntheticSource("msd-spleen", 1, "RAS"),
    SyntheticSource("msd-pancreas", 2, "LPS"),
    SyntheticSource("msd-hepaticvessel", 4, "RAS"),
    SyntheticSource("msd-lung", 2, "LPS"),
    SyntheticSource("msd-colon", 2, "RAS"),
    SyntheticSource("kits23", 3, "LPS"),
)
"""The demo's sources: together they annotate all 32 classes, each class in only some of them.
The multi-organ sources are the larger ones, as the real ones are; the rarest classes (hepatic
vessel, celiac trunk, femoral heads, rectum) are still annotated in 4 to 8 of the 47 cases.
(WORD and KiTS reorient to their own layouts: LPS and I-P-L.)"""

REAL_CASES: dict[str, int] = {
    "totalsegmentator": 1228, "amos22": 300, "btcv": 30, "word": 150, "abdomenct-12organ": 50, "msd-liver": 131,
    "msd-spleen": 41, "msd-pancreas": 281, "msd-hepaticvessel": 303, "msd-lung": 63, "msd-colon": 126,
    "kits23": 489,
}
"""Labelled CT cases of each demo source's download, as the datasets document them (TotalSegmentator
v2.0.1; AMOS22 training and validation CT; WORD with its test labels; BTCV's Synapse training
cases; the MSD tasks' training cases; KiTS23's public cases)."""

BACKGROUND_PREVALENCE = 0.1
"""Share of a source's cases with a tumour type that the source does not annotate (our choice):
there, unlabelled, as in real scans."""

SOURCE_PREVALENCE: dict[str, dict[str, float]] = {
    "msd-liver": {"liver tumor": 0.9},
    "msd-hepaticvessel": {"hepatic vessel tumor": 0.9},
    "msd-pancreas": {"pancreas tumor": 1.0},
    "msd-lung": {"lung tumor": 1.0},
    "msd-colon": {"colon tumor": 1.0},
    "kits23": {"kidney tumor": 1.0, "kidney cyst": 0.3},
    "totalsegmentator": {"kidney cyst": 0.3},
}
"""Share of a source's cases with each tumour type it annotates: the tumour sources collect
patients with that tumour (our estimates: all, or nearly all where some scans are reported
without one); kidney cysts are common incidental findings."""


def source_tumours(name: str) -> TumourCohort:
    """The tumours of a source's cases: ``SOURCE_PREVALENCE``, ``BACKGROUND_PREVALENCE`` for the others."""
    background = {tumour: BACKGROUND_PREVALENCE for tumour in LESION_PROFILES}
    return TumourCohort(background | SOURCE_PREVALENCE.get(name, {}))


def _apportion(weights: Sequence[float], total: int) -> list[int]:
    """``total`` split in proportion to ``weights``, at least 1 each (largest remainders)."""
    if total < len(weights):
        raise ValueError(f"{total} cases cannot give each of {len(weights)} sources one")
    exact = np.asarray(weights, float) / sum(weights) * total
    counts = np.maximum(np.floor(exact), 1).astype(int)
    while counts.sum() > total:  # the minimum of one took cases from the larger sources
        counts[np.argmax(np.where(counts > 1, counts - exact, -np.inf))] -= 1
    for i in np.argsort(counts - exact, kind="stable")[:total - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def tumour_sources(total: int) -> tuple[SyntheticSource, ...]:
    """The demo's sources with ``total`` cases shared as in ``REAL_CASES`` (each at least one), in
    their orientations, with their tumours (``source_tumours``)."""
    counts = _apportion([REAL_CASES[s.name] for s in DEMO_SOURCES], total)
    return tuple(SyntheticSource(s.name, n, s.orientation, source_tumours(s.name))
                 for s, n in zip(DEMO_SOURCES, counts))


TUMOUR_SOURCES: tuple[SyntheticSource, ...] = tumour_sources(sum(s.cases for s in DEMO_SOURCES))
"""The demo's number of cases (47) shared as the real sources are, with realistic tumours."""


def one_large_source(total: int, large: str = "abdomenct-1k", share: float = 0.5) -> tuple[SyntheticSource, ...]:
    """``large`` holding ``share`` of ``total`` cases, and the demo's sources sharing the rest in the demo's
    proportions (each at least one). AbdomenCT-1K, the default, was the largest source of the paper's
    collection (1,000 of its CT scans) and annotates only four organs."""
    held = round(total * share)
    counts = _apportion([s.cases for s in DEMO_SOURCES], total - held)
    return (SyntheticSource(large, held), *(replace(s, cases=n) for s, n in zip(DEMO_SOURCES, counts)))


ONE_LARGE_SOURCE: tuple[SyntheticSource, ...] = one_large_source(sum(s.cases for s in DEMO_SOURCES))
"""The demo's number of cases (47), half of them from AbdomenCT-1K: for measuring source sampling."""

HELDOUT_TUMOURS = TumourCohort({tumour: 0.5 for tumour in LESION_PROFILES}, tumour_free=0.25)
"""Held-out scans for detection: a quarter without any tumour, each tumour type in half of the others."""

HELDOUT_SEED = 10_000
"""Seeds of held-out phantoms start here, apart from the training phantoms' seeds."""


def oriented_case(phantom: Phantom, case_id: int, orientation: str) -> SourceCase:
    """The phantom as a ``SourceCase`` whose image (and masks) are stored in ``orientation``."""
    image = sitk.DICOMOrient(phantom.image, orientation)
    masks = {}
    for name, mask in phantom.masks.items():
        m = sitk.GetImageFromArray(mask.astype(np.uint8))
        m.CopyInformation(phantom.image)
        masks[name] = sitk.GetArrayFromImage(sitk.DICOMOrient(m, orientation)).astype(bool)
    return SourceCase(case_id, image, masks, {"sex": phantom.sex, "split": "Tr"})


def write_sources(root: Path, sources: Sequence[SyntheticSource] = DEMO_SOURCES, seed: int = 0,
                  **phantom_kwargs) -> dict[str, Path]:
    """Write each source's phantoms below ``root/<source>``; returns source -> INPUT_DIR for convert.
    Phantoms are numbered from ``seed`` on; a source's tumours are drawn with its first phantom's seed."""
    inputs = {}
    next_seed = seed
    for source in sources:
        plans = source.tumours.plans(source.cases, next_seed) if source.tumours else [None] * source.cases
        cases = []
        for i, lesions in enumerate(plans):
            phantom = generate_phantom(next_seed, lesions=lesions, **phantom_kwargs)
            cases.append(oriented_case(phantom, i + 1, source.orientation))
            next_seed += 1
        inputs[source.name] = write_source(source.name, Path(root) / source.name, cases)
    return inputs


def atom_map(masks: dict[str, np.ndarray]) -> np.ndarray:
    """Universal label atoms (the values of ``dataset_labels()``) of a phantom's masks."""
    value = {atom: v for v, atom in atom_table(dataset_labels()[0]).items()}
    out = np.zeros(next(iter(masks.values())).shape, np.uint8)
    for name in CLASS_NAMES:
        if name not in PARENTS:
            out[masks[name]] = value[frozenset([name])]
    for child, hosts in PARENTS.items():
        for host in hosts:
            out[masks[child] & masks[host]] = value[frozenset([child, host])]
    return out


def write_heldout(folder: Path, count: int, seed: int = HELDOUT_SEED, tumours: TumourCohort | None = None,
                  **phantom_kwargs) -> list[Phantom]:
    """Write ``count`` fully labelled phantoms (seeds from ``seed`` on) as
    ``folder/{imagesTs,labelsTs,dataset.json}``; with ``tumours`` (e.g. ``HELDOUT_TUMOURS``), their
    tumours are that cohort's, drawn with ``seed``."""
    folder = Path(folder)
    (folder / "imagesTs").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTs").mkdir(exist_ok=True)
    phantoms, annotated = [], {}
    plans = tumours.plans(count, seed) if tumours else [None] * count
    for i, lesions in enumerate(plans):
        phantom = generate_phantom(seed + i, lesions=lesions, **phantom_kwargs)
        case = f"phantom_{i + 1:03d}"
        sitk.WriteImage(phantom.image, str(folder / f"imagesTs/{case}_0000.nii.gz"), useCompression=True)
        label = sitk.GetImageFromArray(atom_map(phantom.masks))
        label.CopyInformation(phantom.image)
        sitk.WriteImage(label, str(folder / f"labelsTs/{case}.nii.gz"), useCompression=True)
        phantoms.append(phantom)
        annotated[case] = list(CLASS_NAMES)
    labels, order = dataset_labels()
    (folder / "dataset.json").write_text(json.dumps({
        "name": "SyntheticHeldOut", "channel_names": {"0": "CT"}, "labels": labels,
        "regions_class_order": order, "numTest": count, "file_ending": ".nii.gz",
        "annotated_classes": annotated}, indent=1))
    return phantoms
