"""Extending a trained universal model to new classes of its dataset without forgetting the old ones.

The dataset gains classes and the cases of the sources that annotate them; those cases do not
annotate the old classes, and the old cases do not annotate the new ones. Trained on them alone,
the model would forget what it no longer sees. Two remedies (``nnUNetTrainerCLIP_Extend``):

* pseudo-labels: a frozen copy of the starting model (the teacher) labels the old classes that a
  case does not annotate, hard (probability > 0.5), so every old class is supervised in every case;
  ground truth stays where a case has it, and a new class a case does not annotate stays masked;
* replay: the cases that annotate a new class are drawn with a fixed share, the old cases
  (pseudo-labelled where unannotated) otherwise.
"""
from __future__ import annotations

import copy
from typing import Container, Sequence

import torch
from torch import nn

from nnunet_clip.source_sampling import repeated


def frozen_copy(network: nn.Module) -> nn.Module:
    """A deep copy of ``network`` in eval mode whose parameters take no gradient (the teacher)."""
    teacher = copy.deepcopy(network).eval()
    return teacher.requires_grad_(False)


def pseudo_label_pairs(annotated: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """(B, K) bool: the (case, class) pairs of an old class (``old``, (K,) bool) that the case does not
    annotate (``annotated``, (B, K)): the pairs the teacher labels."""
    return old.to(annotated.device)[None] & ~annotated.bool()


def with_pseudo_labels(target, teacher_logits, pairs: torch.Tensor):
    """``target`` (B, K, *S), or one per deep-supervision level, with the ``pairs`` (B, K) replaced by the
    teacher's hard labels (logit > 0). Hard, because the loss's Dice counts a target with any foreground
    as present (``loss``)."""
    if isinstance(target, (list, tuple)):
        return [with_pseudo_labels(t, logits, pairs) for t, logits in zip(target, teacher_logits)]
    where = pairs.to(target.device).view(*pairs.shape, *[1] * (target.ndim - 2))
    return torch.where(where, (teacher_logits > 0).to(target.device, target.dtype), target)


def replay_identifiers(identifiers: Sequence[str], new_cases: Container[str], share: float) -> list[str]:
    """``identifiers`` (nnU-Net's loader draws uniformly among them; they may repeat) with each entry
    repeated (``source_sampling.repeated``) so that an entry of ``new_cases`` is drawn with probability
    ``share``, the others with 1 - share; within each group the entries keep their relative weights.
    Unchanged if either group is empty."""
    new = sum(i in new_cases for i in identifiers)
    old = len(identifiers) - new
    if not new or not old:
        return list(identifiers)
    return repeated(identifiers, {i: share / new if i in new_cases else (1 - share) / old for i in identifiers})
