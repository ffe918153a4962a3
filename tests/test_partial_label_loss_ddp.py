"""The masked loss under DDP: batch Dice over all ranks, as nnU-Net computes it (2 CPU processes, gloo)."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from nnunet_clip.loss import PartialLabelDiceBCELoss

WORLD = 2


def full_batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, 5, 6, 4, generator=g)
    target = (torch.rand(4, 3, 5, 6, 4, generator=g) > 0.6).float()
    annotated = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float32)
    return logits, target, annotated


def dice_term(loss, logits, target, annotated):
    return loss._dice_loss(logits, target, annotated.float(), tuple(range(2, logits.ndim)), 1.0)


def worker(rank: int, init_file: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    logits, target, annotated = (t.chunk(WORLD)[rank] for t in full_batch())
    logits.requires_grad_(True)
    ours = PartialLabelDiceBCELoss(batch_dice=True, ddp=True)
    masked = dice_term(ours, logits, target, annotated)
    masked.backward()
    nnunet = MemoryEfficientSoftDiceLoss(torch.sigmoid, batch_dice=True, do_bg=True, smooth=1e-5, ddp=True)
    all_annotated = dice_term(ours, logits.detach(), target, torch.ones_like(annotated))
    torch.save({"masked": masked.detach(), "grad": logits.grad, "all_annotated": all_annotated,
                "nnunet": nnunet(logits.detach(), target)}, f"{results}.{rank}")
    dist.destroy_process_group()


def test_batch_dice_spans_ranks_and_masked_pairs_get_no_gradient(tmp_path):
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path / "rank")), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank.{r}") for r in range(WORLD)]
    logits, target, annotated = full_batch()
    single = PartialLabelDiceBCELoss(batch_dice=True)
    expected = dice_term(single, logits, target, annotated)
    for r, result in enumerate(ranks):
        torch.testing.assert_close(result["masked"], expected)  # every rank sees the global batch Dice
        torch.testing.assert_close(result["all_annotated"], result["nnunet"])  # nnU-Net's DDP Dice
        grad_per_pair = result["grad"].abs().flatten(2).sum(-1)
        local_annotated = annotated.chunk(WORLD)[r]
        assert torch.all(grad_per_pair[local_annotated == 0] == 0)
        assert torch.all(grad_per_pair[local_annotated == 1] > 0)
