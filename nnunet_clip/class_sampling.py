"""Foreground patches centred on rarely annotated classes as often as on common ones.

nnU-Net centres a forced-foreground patch on a class drawn uniformly from the classes present in the
case. In a partially labelled collection a class annotated in few cases (a prostate in 6 of 47, a
tumour in 2) is then the centre of almost no patch, and its head learns little. Here the class is
drawn with probability ∝ n_c^-power among those present, n_c the number of training cases in which
class c has voxels (power 0: nnU-Net's draw; 1: each class about equally often over the whole
training set).

nnU-Net's data loader draws the class itself, from the ``class_locations`` of the case's properties.
``ClassBalancedCases(dataset, power)`` is a dataset whose cases keep the locations of one class only,
drawn as above (from NumPy's global generator, which ``nnUNet_clip_seed`` seeds); the
loader then centres its patch on that class. Patches that are not forced to foreground ignore the
locations, so they are drawn as before.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np
from batchgenerators.utilities.file_and_folder_operations import join, load_pickle


def present(class_locations: dict) -> list:
    """The classes (or regions) with voxels in a case's ``class_locations``."""
    return [key for key, voxels in class_locations.items() if len(voxels)]


def cases_per_class(all_class_locations: Iterable[dict]) -> Counter:
    """Number of cases in which each class (or region) has voxels."""
    return Counter(key for locations in all_class_locations for key in present(locations))


def draw_class(class_locations: dict, cases: Counter, power: float):
    """One present class, with probability ∝ cases[c]^-power; None if the case has no foreground."""
    keys = present(class_locations)
    if not keys:
        return None
    weights = np.array([cases.get(k, 1) for k in keys], dtype=float) ** -power
    return keys[np.random.choice(len(keys), p=weights / weights.sum())]


class ClassBalancedCases:
    """A training dataset of nnU-Net (any of its dataset classes) whose cases offer the data loader one
    class to centre a forced-foreground patch on, drawn with probability ∝ n_c^-power (n_c over the
    dataset's cases). Everything else is the wrapped dataset's."""

    def __init__(self, dataset, power: float):
        self.dataset, self.power = dataset, power
        self.cases_per_class = cases_per_class(
            load_pickle(join(dataset.source_folder, f"{i}.pkl"))["class_locations"] for i in set(dataset.identifiers))

    def __getattr__(self, name):
        if name == "dataset":  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, identifier):
        return self.load_case(identifier)

    def load_case(self, identifier):
        data, seg, seg_prev, properties = self.dataset.load_case(identifier)
        locations = properties["class_locations"]
        chosen = draw_class(locations, self.cases_per_class, self.power)
        if chosen is not None:
            properties = {**properties, "class_locations": {chosen: locations[chosen]}}
        return data, seg, seg_prev, properties
