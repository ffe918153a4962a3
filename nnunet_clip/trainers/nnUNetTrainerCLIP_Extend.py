"""nnUNetTrainerCLIP_Extend: a trained universal model learns the classes its dataset gained, keeping the
old ones (``nnunet_clip.extension``; docs/training.md, "Adding classes to a trained model")."""
from __future__ import annotations

import torch
from torch import autocast

from nnunetv2.utilities.helpers import dummy_context

from nnunet_clip.errors import InputError
from nnunet_clip.extension import frozen_copy, pseudo_label_pairs, replay_identifiers, with_pseudo_labels
from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP


class nnUNetTrainerCLIP_Extend(nnUNetTrainerCLIP):
    """nnUNetTrainerCLIP from a universal checkpoint (``-pretrained_weights``, required) whose classes are
    the old ones. A frozen copy of the network as loaded (the teacher) labels, in each training and
    validation batch, the old classes a case does not annotate, so the loss counts every old class in
    every case; cases that annotate a new class are drawn with probability ``new_case_share``. The
    teacher is never trained nor saved: the checkpoint is an ordinary universal one."""

    new_case_share: float = 0.75
    """Probability of drawing a training case that annotates a new class (the rest: old cases, replayed). On
    phantoms 0.75 kept every new class where 0.5 lost the rectum in one run of three, with no more
    forgetting (docs/benchmarks.md, "Transfer and extension")."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.old_classes = torch.zeros(len(self.class_names), dtype=torch.bool)
        self.teacher: torch.nn.Module | None = None

    def check_pretrained_weights(self, path: str) -> None:
        super().check_pretrained_weights(path)
        self.old_classes = torch.tensor([name in self.pretrained_classes for name in self.class_names])

    def on_train_start(self):
        """The teacher: the network as nnU-Net's loader left it (it loads after ``initialize``)."""
        if self.pretrained_weights is None:
            raise InputError(f"nnUNetv2_train: {type(self).__name__} extends a trained universal model: pass its "
                             "checkpoint with -pretrained_weights (a stopped extension cannot be continued with --c)")
        super().on_train_start()
        self.teacher = frozen_copy(self._unwrapped_network())

    def get_tr_and_val_datasets(self):
        dataset_tr, dataset_val = super().get_tr_and_val_datasets()
        cases = sorted(set(dataset_tr.identifiers))
        annotated = self.annotations.mask(cases).bool()
        new_cases = {case for case, row in zip(cases, annotated) if (row & ~self.old_classes).any()}
        dataset_tr.identifiers = replay_identifiers(dataset_tr.identifiers, new_cases, self.new_case_share)
        share = self.new_case_share if 0 < len(new_cases) < len(cases) else len(new_cases) / len(cases)
        pseudo = [name for name, old, everywhere in zip(self.class_names, self.old_classes, annotated.all(0))
                  if old and not everywhere]
        self.print_to_log_file(f"Extension: {len(new_cases)} of {len(cases)} training cases annotate new classes, "
                               f"drawn with probability {share:g}, the others replayed; old classes "
                               f"pseudo-labelled by the frozen starting model where unannotated: "
                               f"{', '.join(pseudo) or 'none'}")
        return dataset_tr, dataset_val

    def loss_mask(self, keys) -> torch.Tensor:
        """The classes each case annotates, and every old class (pseudo-labelled where unannotated)."""
        return torch.maximum(super().loss_mask(keys), self.old_classes.float())

    def with_pseudo_labels(self, batch: dict) -> dict:
        """The batch, on the device, with the teacher's hard labels for the old classes its cases do not annotate."""
        pairs = pseudo_label_pairs(self.annotations.mask(batch["keys"]), self.old_classes).to(self.device)
        if not pairs.any():
            return batch
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = [t.to(self.device, non_blocking=True) for t in target] if isinstance(target, list) \
            else target.to(self.device, non_blocking=True)
        with torch.no_grad(), self.teacher.computing_only(pairs), \
                autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            logits = self.teacher(data)
        return {**batch, "data": data, "target": with_pseudo_labels(target, logits, pairs)}

    def train_step(self, batch: dict) -> dict:
        return super().train_step(self.with_pseudo_labels(batch))

    def validation_step(self, batch: dict) -> dict:
        return super().validation_step(self.with_pseudo_labels(batch))

