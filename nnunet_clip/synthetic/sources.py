"""Synthetic source datasets in their real layouts, and a fully labelled held-out set.

Every phantom contains all structures; each source's files show only what that source annotates
(``layouts.write_source``), in the source's own label values and on-disk orientation. The
held-out scans are written as an nnU-Net raw test set (``imagesTs``, ``labelsTs`` with the
universal label atoms, and a dataset.json annotating every class) that ``nnunet-clip evaluate``
reads.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from nnunet_clip.synthetic.layouts import SourceCase, write_source
from nnunet_clip.synthetic.phantom import Phantom, generate_phantom
from nnunet_clip.taxonomy import CLASS_NAMES, PARENTS, atom_table, dataset_labels


@dataclass(frozen=True)
class SyntheticSource:
    """A source to imitate: its ``nnunet-clip convert`` name, number of cases, image orientation."""

    name: str
    cases: int
    orientation: str = "LPS"


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
    """Write each source's phantoms below ``root/<source>``; returns source -> INPUT_DIR for convert."""
    inputs = {}
    next_seed = seed
    for source in sources:
        cases = []
        for i in range(source.cases):
            phantom = generate_phantom(next_seed, **phantom_kwargs)
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


def write_heldout(folder: Path, count: int, seed: int = HELDOUT_SEED, **phantom_kwargs) -> list[Phantom]:
    """Write ``count`` fully labelled phantoms as ``folder/{imagesTs,labelsTs,dataset.json}``."""
    folder = Path(folder)
    (folder / "imagesTs").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTs").mkdir(exist_ok=True)
    phantoms, annotated = [], {}
    for i in range(count):
        phantom = generate_phantom(seed + i, **phantom_kwargs)
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
