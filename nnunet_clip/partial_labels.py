"""Which classes each training case annotates: dataset.json ``annotated_classes`` as loss masks."""
from __future__ import annotations

from typing import Collection, Iterable, Sequence

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
        self._position = position = {canonical_name(n): i for i, n in enumerate(class_names)}
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
                             "every training case must say which classes it annotates (cases added to the raw dataset after "
                             "planning: copy its dataset.json here; nnUNetv2_preprocess does not)")

    def class_weights(self, power: float, lesions: Collection[str] = ()) -> torch.Tensor:
        """(K,) weights (N / n_c)^power, n_c the number of the N cases that annotate class c (1 for a class no
        case annotates, and for ``lesions``). Anatomy is in every scan, so a class annotated in n_c cases
        is supervised N / n_c times less often than in a fully labelled collection; with power 1 the
        weighted loss is in expectation that collection's. A lesion is annotated where a source looks
        for it, mostly where it is, so its rarity is not made up for."""
        if self.fully_labelled or not self._rows:
            return torch.ones(self.num_classes)
        counts = torch.stack(list(self._rows.values())).float().sum(0)
        counts[[self._position[canonical_name(n)] for n in lesions if canonical_name(n) in self._position]] = 0
        return torch.where(counts > 0, len(self._rows) / counts.clamp_min(1), torch.ones(())) ** power

    def mask(self, keys: Sequence[str]) -> torch.Tensor:
        """(len(keys), K) float mask: 1 where the case annotates the class."""
        if self.fully_labelled:
            return torch.ones(len(keys), self.num_classes)
        self.check_cases(keys)
        return torch.stack([self._rows[k] for k in keys]).float()
