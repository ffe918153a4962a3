"""The recipe variants (``trainers/nnUNetTrainerCLIP_recipes.py``): what each changes, on the tiny dataset."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import make_trainer
from nnunet_clip.inference.predictor import SelectedHeads
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


@pytest.mark.parametrize("recipe", ["nnUNetTrainerCLIP_NormHeadsWarmupExclusion", "nnUNetTrainerCLIP_Exclusion"])
def test_exclusion_recipes_use_the_datasets_disjoint_regions_and_compute_every_head(tiny_preprocessed, recipe):
    from nnunet_clip.loss import disjoint_regions
    from nnunet_clip.trainers import nnUNetTrainerCLIP_recipes

    trainer = make_trainer(tiny_preprocessed, getattr(nnUNetTrainerCLIP_recipes, recipe))
    trainer.initialize()
    loss = getattr(trainer.loss, "loss", trainer.loss)
    expected = disjoint_regions(trainer.label_manager.foreground_regions)
    assert expected.any() and not expected.all()  # the tiny dataset has overlapping and disjoint classes
    assert torch.equal(loss.disjoint.bool(), expected)
    keys = trainer.get_tr_and_val_datasets()[0].identifiers[:2]
    assert not trainer.loss_mask(keys).bool().all()  # these cases leave classes unannotated ...
    with trainer._loss_for_cases(keys):
        assert trainer.network.computed_classes.all()  # ... whose heads the exclusion loss still needs


def test_class_offsets_recipe_gives_each_class_own_head_parameters_that_move_only_with_its_annotations(
        tiny_preprocessed):
    from nnunet_clip.trainers.nnUNetTrainerCLIP_recipes import nnUNetTrainerCLIP_ClassOffsets

    trainer = make_trainer(tiny_preprocessed, nnUNetTrainerCLIP_ClassOffsets)
    trainer.initialize()
    network = trainer.network
    offsets = network.classes.head_offsets
    levels = len(network.projections)
    assert offsets.shape == (len(trainer.class_names), levels, network.heads.num_parameters)
    assert trainer.plans_manager.plans["universal_model"]["class_head_offsets"]
    assert any(p is offsets for group in trainer.optimizer.param_groups for p in group["params"])
    x = torch.randn(1, 1, *trainer.configuration_manager.patch_size)
    network.autocast_dtype = None  # float32, for exact sums
    network.eval()
    with torch.no_grad():
        before = network(x)[0]
        offsets[0, 0, -1] += 3.0  # the logit bias of class 0's full-resolution head
        after = network(x)[0]
    assert torch.allclose(after[:, 0], (before[:, 0] + 3.0).clamp(max=50.0), atol=1e-4)
    assert torch.equal(after[:, 1:], before[:, 1:])
    selected = SelectedHeads(network, [1, 0], network.class_embeddings[:1])  # class 0 again, as a zero-shot name
    with torch.no_grad():
        chosen = selected(x)[0]
    assert torch.allclose(chosen[:, :2], after[:, [1, 0]], atol=1e-5)  # the model's classes keep their offsets
    assert torch.allclose(chosen[:, 2], before[:, 0], atol=1e-5)  # a zero-shot head has none
    network.train()
    with network.computing_only(torch.tensor([[True] + [False] * (offsets.shape[0] - 1)])):
        network(x)[0][:, 0].mean().backward()
    assert offsets.grad[0].abs().sum() > 0 and not offsets.grad[1:].any()


@pytest.mark.parametrize("recipe, power, lesions_too", [("nnUNetTrainerCLIP", 0.5, False),
                                                        ("nnUNetTrainerCLIP_ClassOffsetsRareClassesWeighted", 1.0, False),
                                                        ("nnUNetTrainerCLIPLesionWeights", 0.5, True)])
def test_default_and_weighted_recipes_weigh_each_class_by_its_rarity_in_the_datasets_annotations(
        tiny_preprocessed, recipe, power, lesions_too):
    from nnunet_clip.class_sampling import ClassBalancedCases
    from nnunet_clip.taxonomy import is_lesion
    from nnunet_clip.trainers import nnUNetTrainerCLIP_recipes
    from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP

    trainer = make_trainer(tiny_preprocessed, getattr(nnUNetTrainerCLIP_recipes, recipe, nnUNetTrainerCLIP))
    trainer.initialize()
    weights = getattr(trainer.loss, "loss", trainer.loss).class_weights
    masks = trainer.annotations.mask(list(trainer.dataset_json["annotated_classes"]))
    lesions = torch.tensor([is_lesion(n) for n in trainer.class_names])
    rarity = len(masks) / masks.sum(0)
    torch.testing.assert_close(weights, (rarity if lesions_too else rarity.where(~lesions, 1.0)) ** power)
    assert (weights[lesions] > 1).any() == lesions_too  # a lesion annotated in some cases only counts more, or once
    assert weights.max() > weights.min()  # the tiny dataset annotates some classes in fewer cases
    assert trainer.network.classes.head_offsets is not None  # with per-class head offsets ...
    assert isinstance(trainer.get_tr_and_val_datasets()[0], ClassBalancedCases)  # ... and class-balanced patches


def test_baseline_recipe_has_none_of_the_defaults_three_choices(tiny_preprocessed):
    from nnunet_clip.class_sampling import ClassBalancedCases
    from nnunet_clip.trainers.nnUNetTrainerCLIP_recipes import nnUNetTrainerCLIP_Baseline

    trainer = make_trainer(tiny_preprocessed, nnUNetTrainerCLIP_Baseline)
    trainer.initialize()
    assert getattr(trainer.loss, "loss", trainer.loss).class_weights is None
    assert trainer.network.classes.head_offsets is None
    assert not isinstance(trainer.get_tr_and_val_datasets()[0], ClassBalancedCases)


def test_sharp_tumours_recipe_drops_only_the_blurring_augmentations():
    from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP
    from nnunet_clip.trainers.nnUNetTrainerCLIP_recipes import nnUNetTrainerCLIPSharpTumours, blurs

    args = ((24, 32, 40), (-0.5, 0.5), None, None, False, [False], False, [1, 2], [(1, 2), (2,)], None)
    default = nnUNetTrainerCLIP.get_training_transforms(*args).transforms
    sharp = nnUNetTrainerCLIPSharpTumours.get_training_transforms(*args).transforms
    assert sum(map(blurs, default)) == 2  # nnU-Net's Gaussian blur and simulated low resolution
    assert not any(map(blurs, sharp)) and len(sharp) == len(default) - 2
