"""The recipe variants (``trainers/nnUNetTrainerCLIP_recipes.py``): what each changes, on the tiny dataset."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import make_trainer
from nnunet_clip.trainers.nnUNetTrainerCLIP import WarmupPolyLRScheduler


def test_warmup_rises_linearly_then_follows_nnunets_poly_schedule():
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-2)
    scheduler = WarmupPolyLRScheduler(optimizer, 1e-2, 100, warmup_steps=4)
    rates = []
    for epoch in range(6):
        scheduler.step(epoch)
        rates.append(optimizer.param_groups[0]["lr"])
    poly = [1e-2 * (1 - e / 100) ** 0.9 for e in range(6)]
    assert rates == pytest.approx([poly[e] * min(1, (e + 1) / 5) for e in range(6)])
    assert rates[4] == pytest.approx(poly[4]) and rates[0] == pytest.approx(poly[0] / 5)


def test_normalized_recipe_builds_normalized_heads_on_normalized_features(tiny_preprocessed):
    from nnunet_clip.trainers.nnUNetTrainerCLIP_recipes import nnUNetTrainerCLIP_NormHeadsWarmup

    trainer = make_trainer(tiny_preprocessed, nnUNetTrainerCLIP_NormHeadsWarmup)
    trainer.initialize()
    network = trainer.network
    assert network.heads.normalized and trainer.warmup_epochs == 10
    projection = network.projections[0]
    assert isinstance(projection, nn.Sequential) and isinstance(projection[1], network.encoder.norm_op)
    entry = trainer.plans_manager.plans["universal_model"]
    assert entry["normalized_head_input"] and entry["normalized_heads"]  # the saved plans rebuild it so


def test_exclusion_recipe_uses_the_datasets_disjoint_regions_and_computes_every_head(tiny_preprocessed):
    from nnunet_clip.loss import disjoint_regions
    from nnunet_clip.trainers.nnUNetTrainerCLIP_recipes import nnUNetTrainerCLIP_NormHeadsWarmupExclusion

    trainer = make_trainer(tiny_preprocessed, nnUNetTrainerCLIP_NormHeadsWarmupExclusion)
    trainer.initialize()
    loss = getattr(trainer.loss, "loss", trainer.loss)
    expected = disjoint_regions(trainer.label_manager.foreground_regions)
    assert expected.any() and not expected.all()  # the tiny dataset has overlapping and disjoint classes
    assert torch.equal(loss.disjoint.bool(), expected)
    keys = trainer.get_tr_and_val_datasets()[0].identifiers[:2]
    assert not trainer.loss_mask(keys).bool().all()  # these cases leave classes unannotated ...
    with trainer._loss_for_cases(keys):
        assert trainer.network.computed_classes.all()  # ... whose heads the exclusion loss still needs
