"""Which classes each training case annotates: dataset.json ``annotated_classes`` as loss masks."""
from __future__ import annotations

from typing import Iterable, Sequence

import torch

from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import canonical_name
from nnunet_clip.vocabulary import ANNOTATED_KEY


class AnnotatedClasses:
    """Case identifier → the network's classes that case annotates, as (batch, class) masks.

    A dataset.json without ``annotated_classes`` is a plain nnU-Net dataset: every case annotates
    every class (``fully_labelled``). Where the key is present, a case missing from it is an error.
    """

    def __init__(self, dataset_json: dict, class_names: Sequence[str], source: str = "dataset.json"):
        self.source = source
        self.num_classes = len(class_names)
        self.fully_labelled = ANNOTATED_KEY not in dataset_json
        position = {canonical_name(n): i for i, n in enumerate(class_names)}
        self._rows: dict[str, torch.Tensor] = {}
        for case, names in dataset_json.get(ANNOTATED_KEY, {}).items():
            unknown = [n for n in names if canonical_name(n) not in position]
            if unknown:
                raise InputError(f"{source}: case '{case}' annotates {unknown}, which are not classes of this dataset")
            row = torch.zeros(len(class_names), dtype=torch.bool)
            row[[position[canonical_name(n)] for n in names]] = True
            self._rows[case] = row

    def check_cases(self, identifiers: Iterable[str]) -> None:
        """Raise, naming the case, if a case is missing from ``annotated_classes``."""
        missing = [] if self.fully_labelled else sorted(set(identifiers) - self._rows.keys())
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise InputError(f"{self.source}: case '{missing[0]}'{more} is missing from '{ANNOTATED_KEY}'; "
                             "every training case must say which classes it annotates")

    def mask(self, keys: Sequence[str]) -> torch.Tensor:
        """(len(keys), K) float mask: 1 where the case annotates the class."""
        if self.fully_labelled:
            return torch.ones(len(keys), self.num_classes)
        self.check_cases(keys)
        return torch.stack([self._rows[k] for k in keys]).float()
