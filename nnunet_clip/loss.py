"""nnU-Net's Dice + BCE for regions, counting only the annotated (case, class) pairs.

BCE averaged over all voxels and annotated (case, class) pairs; soft Dice per (case, class) or,
with ``batch_dice``, per class over the batch (and, under DDP, over all ranks, as nnU-Net does
it). A masked (case, class) enters neither term: it contributes exactly zero loss and zero
gradient. Deep supervision is nnU-Net's ``DeepSupervisionWrapper`` around this loss.

One departure from nnU-Net's ``DC_and_BCE_loss`` (``MemoryEfficientSoftDiceLoss``, ``do_bg=True``,
``smooth=1e-5``), which this equals when every class is annotated and present: the Dice term
averages only over the (case, class) pairs whose target has foreground (with ``batch_dice``: the
classes with foreground somewhere in the batch). Against an empty target the soft Dice is
``smooth / (Σp + smooth)``, optimal only when the probabilities sum to about ``smooth``: it drives
every logit of the class below about -25, where the sigmoid passes no gradient and the class can
no longer learn from the cases that show it. With partial labels many (case, class) pairs are
empty in a patch (a tumour in a healthy organ, a femoral head outside the patch); BCE still counts
them and teaches the class's absence (measurements: docs/demo_experiments.md).

With ``disjoint`` (a (K, K) matrix, True where two classes never share a voxel), BCE also counts the
known negatives of unannotated pairs: a voxel of an annotated class is outside every class disjoint
from it (the exclusion loss of Shi et al., MedIA 2021). A head then also learns where its class is
not from the sources that do not annotate it (on the phantoms it lost more classes than without:
docs/demo_experiments.md, "Issue 19").

With ``logit_penalty`` λ > 0, λ·mean(logit²) over the annotated pairs is added. BCE keeps pushing
logits that are already right further out (under Adam at a steady pace, whatever the gradient's
size); the penalty balances it where e^-|z| ≈ 2λ|z| (|z| ≈ 4.7 for λ = 1e-3, probability 0.991).
On the phantoms it cut the largest logit tenfold and did not keep classes alive (one seed:
docs/demo_experiments.md, "Issue 19").

With ``class_weights`` (K,), each annotated (case, class) pair counts with its class's weight in the
BCE mean and in the Dice mean over classes (``AnnotatedClasses.class_weights``: rarely annotated
classes count more).
"""
from __future__ import annotations

import torch
from torch import nn
from nnunetv2.utilities.ddp_allgather import AllGatherGrad


def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """Sum of (B, K) statistics over the batches of all DDP ranks, keeping gradients (nnU-Net's way)."""
    return AllGatherGrad.apply(t).sum(0)


def disjoint_regions(regions) -> torch.Tensor:
    """(K, K) bool: True where two of nnU-Net's regions (tuples of label values) share no label value,
    so their classes never share a voxel (an organ and its tumour do; two organs do not)."""
    values = [set(r) if isinstance(r, (list, tuple)) else {r} for r in regions]
    return torch.tensor([[not (a & b) for b in values] for a in values])


class PartialLabelDiceBCELoss(nn.Module):
    """Dice + BCE on sigmoid logits (B, K, *S) against region targets (B, K, *S), masked by (B, K)."""

    def __init__(self, batch_dice: bool, ddp: bool = False, smooth: float = 1e-5,
                 weight_ce: float = 1.0, weight_dice: float = 1.0, disjoint: torch.Tensor | None = None,
                 logit_penalty: float = 0.0, class_weights: torch.Tensor | None = None):
        super().__init__()
        self.class_weights = class_weights
        self.logit_penalty = logit_penalty
        self.disjoint = None if disjoint is None else disjoint.float()
        self.batch_dice = batch_dice
        self.ddp = ddp
        self.smooth = smooth
        self.weight_ce = weight_ce
        self.weight_dice = weight_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
        annotated = annotated.to(device=logits.device, dtype=torch.float32)
        target = target.to(torch.float32)
        spatial = tuple(range(2, logits.ndim))
        bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(spatial)
        class_weights = 1.0 if self.class_weights is None else self.class_weights.to(logits.device, torch.float32)
        ce_sum, ce_count = (bce * annotated * class_weights).sum(), (annotated * class_weights).sum()
        if self.disjoint is not None:
            negatives = self.known_negatives(target, annotated)
            ce_sum = ce_sum + (nn.functional.softplus(logits) * negatives).mean(spatial).sum()
            ce_count = ce_count + negatives.flatten(2).amax(-1).sum()
        ce_loss = ce_sum / ce_count.clamp_min(1)
        dice_loss = self._dice_loss(logits, target, annotated, spatial, class_weights)
        loss = self.weight_ce * ce_loss + self.weight_dice * dice_loss
        if self.logit_penalty:
            squares = logits.float().square().mean(spatial)
            loss = loss + self.logit_penalty * (squares * annotated).sum() / annotated.sum().clamp_min(1)
        return loss

    def known_negatives(self, target: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
        """(B, K, *S): 1 where class k is not annotated in the case but the voxel belongs to an annotated
        class disjoint from k."""
        known = (target * annotated[(...,) + (None,) * (target.ndim - 2)]).flatten(2)
        outside = torch.einsum("jk,bjn->bkn", self.disjoint.to(known.device, known.dtype), known) > 0
        return (outside * (annotated == 0)[..., None]).float().unflatten(2, target.shape[2:])

    def _dice_loss(self, logits, target, annotated, spatial, class_weights) -> torch.Tensor:
        probabilities = torch.sigmoid(logits)
        intersect = (probabilities * target).sum(spatial, dtype=torch.float32) * annotated
        sum_pred = probabilities.sum(spatial, dtype=torch.float32) * annotated
        sum_gt = target.sum(spatial, dtype=torch.float32) * annotated
        weight = annotated * (sum_gt > 0)
        if self.batch_dice:
            if self.ddp:
                intersect, sum_pred, sum_gt, weight = map(_sum_over_ranks, (intersect, sum_pred, sum_gt, weight))
            intersect, sum_pred, sum_gt = intersect.sum(0), sum_pred.sum(0), sum_gt.sum(0)
            weight = (weight.sum(0) > 0).float()
        weight = weight * class_weights
        dice = (2 * intersect + self.smooth) / (sum_gt + sum_pred + self.smooth).clamp_min(1e-8)
        return -(dice * weight).sum() / weight.sum().clamp_min(1)
