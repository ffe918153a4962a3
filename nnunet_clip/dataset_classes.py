"""The classes of a dataset to train on: any nnU-Net dataset, with region labels or plain integer ones.

nnUNetTrainerCLIP gives every class its own sigmoid output, which nnU-Net provides for
region-based datasets (class -> the label values its region covers, with ``regions_class_order``).
The converters write such datasets. A plain dataset (each class one label value) becomes one here:
class ``c`` of value ``v`` is the region ``[v, v]``, the same voxels; nnU-Net's ``LabelManager``
takes a dataset to be region-based only where some region lists more than one value. The trainer
saves this dataset.json with the model, so ``nnUNetv2_predict`` exports its label maps with the
dataset's own values.
"""
from __future__ import annotations

from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import CLASS_NAMES, canonical_name, is_known, region_class_names
from nnunet_clip.vocabulary import ANNOTATED_KEY

NOT_CLASSES = ("background", "ignore")


def as_regions(dataset_json: dict) -> dict:
    """``dataset_json`` with plain integer labels written as regions; a region-based one as it is."""
    labels = dataset_json["labels"]
    values = {k: [v] if isinstance(v, int) else list(v) for k, v in labels.items() if k not in NOT_CLASSES}
    if any(len(set(v)) > 1 for v in values.values()):
        return dataset_json
    regions = {k: v if k in NOT_CLASSES else values[k] * 2 for k, v in labels.items()}
    return {**dataset_json, "labels": regions, "regions_class_order": [v[0] for v in values.values()]}


def class_names(labels: dict, source: str = "dataset.json") -> list[str]:
    """The canonical names of the classes of a ``labels`` dict, in output order; an error if two name one class."""
    names = [canonical_name(n) for n in region_class_names(labels)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{source}: two labels name the class {twice[0]!r} (aliases count as one name)")
    return names


def training_notes(dataset_json: dict, names: list[str]) -> list[str]:
    """What the training log says about a dataset's classes: those outside the universal ones, and
    a dataset without ``annotated_classes``."""
    notes = []
    added = [n for n in names if not is_known(n)]
    if added:
        notes.append(f"Classes outside the {len(CLASS_NAMES)} universal ones: {', '.join(added)}")
    if ANNOTATED_KEY not in dataset_json:
        notes.append(f"dataset.json has no '{ANNOTATED_KEY}': every case is taken to annotate every class")
    return notes
