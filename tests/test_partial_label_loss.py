"""The partial-label Dice + BCE loss: nnU-Net's loss where everything is annotated and present, zero where
not annotated, BCE alone where annotated and absent."""
from __future__ import annotations

import pytest
import torch
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from nnunet_clip.loss import PartialLabelDiceBCELoss


def logits_and_target(seed: int = 0, shape=(3, 4, 6, 5, 7)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, requires_grad=True)
    target = (torch.rand(*shape, generator=g) > 0.7).float()
    return logits, target


@pytest.mark.parametrize("batch_dice", [False, True])
def test_equals_nnunet_region_loss_when_every_class_is_annotated(batch_dice):
    logits, target = logits_and_target()
    nnunet = DC_and_BCE_loss({}, {"batch_dice": batch_dice, "do_bg": True, "smooth": 1e-5, "ddp": False},
                             use_ignore_label=False, dice_class=MemoryEfficientSoftDiceLoss)
    ours = PartialLabelDiceBCELoss(batch_dice=batch_dice)
    torch.testing.assert_close(ours(logits, target, torch.ones(3, 4)), nnunet(logits, target))


@pytest.mark.parametrize("batch_dice", [False, True])
def test_masked_case_class_pairs_get_exactly_zero_gradient(batch_dice):
    logits, target = logits_and_target(1)
    annotated = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0]], dtype=torch.float32)
    PartialLabelDiceBCELoss(batch_dice=batch_dice)(logits, target, annotated).backward()
    per_pair = logits.grad.abs().flatten(2).sum(-1)
    assert torch.all(per_pair[annotated == 0] == 0)
    assert torch.all(per_pair[annotated == 1] > 0)


def test_masked_pairs_do_not_change_the_loss_value():
    logits, target = logits_and_target(2)
    annotated = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float32)
    loss = PartialLabelDiceBCELoss(batch_dice=False)
    scrambled = target.clone()
    scrambled[annotated == 0] = 1 - scrambled[annotated == 0]  # what an unannotated class's file shows is irrelevant
    assert loss(logits, target, annotated).item() == pytest.approx(loss(logits, scrambled, annotated).item())
    unmasked = loss(logits, target, torch.ones_like(annotated)).item()
    assert loss(logits, target, annotated).item() != pytest.approx(unmasked)


def test_deep_supervision_wrapper_applies_the_mask_at_every_level():
    levels = [logits_and_target(3, (2, 3, 8, 8, 8)), logits_and_target(4, (2, 3, 4, 4, 4))]
    annotated = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.float32)
    wrapped = DeepSupervisionWrapper(PartialLabelDiceBCELoss(batch_dice=True), [1.0, 0.5])
    wrapped([l for l, _ in levels], [t for _, t in levels], [annotated] * 2).backward()
    for logits, _ in levels:
        assert torch.all(logits.grad.abs().flatten(2).sum(-1)[annotated == 0] == 0)


@pytest.mark.parametrize("batch_dice", [False, True])
def test_an_annotated_class_absent_from_the_patch_gets_only_the_bce_gradient(batch_dice):
    """Soft Dice against an empty target would push every logit of the class below about -25."""
    logits, target = logits_and_target(5)
    target[:, 2] = 0  # class 2: annotated in every case, absent from every patch
    PartialLabelDiceBCELoss(batch_dice=batch_dice)(logits, target, torch.ones(3, 4)).backward()
    voxels_times_pairs = target[0, 0].numel() * 3 * 4
    expected = torch.sigmoid(logits.detach()[:, 2]) / voxels_times_pairs  # d BCE / d logit against 0
    torch.testing.assert_close(logits.grad[:, 2], expected)
    assert torch.all(logits.grad[:, 1].abs().flatten(1).sum(-1) > 0)


def test_empty_targets_leave_the_loss_bounded_at_saturated_logits():
    logits = torch.full((1, 1, 4, 4, 4), -30.0, requires_grad=True)
    loss = PartialLabelDiceBCELoss(batch_dice=False)(logits, torch.zeros_like(logits), torch.ones(1, 1))
    assert loss.item() == pytest.approx(torch.nn.functional.softplus(torch.tensor(-30.0)).item())


def test_regions_that_share_no_label_value_are_disjoint():
    from nnunet_clip.loss import disjoint_regions

    organ, kidney, tumour = (1,), (2, 3), (3,)  # the tumour's atom lies in the kidney's region
    assert disjoint_regions([organ, kidney, tumour]).tolist() == [
        [False, True, True], [True, False, False], [True, False, False]]


def test_exclusion_tells_an_unannotated_class_where_it_is_not():
    """An unannotated class is supervised as absent on the voxels of annotated classes disjoint from it,
    and nowhere else: not on the annotated classes it may share voxels with, not on unlabelled voxels."""
    from nnunet_clip.loss import disjoint_regions

    organ, kidney, tumour, other = (1,), (2, 3), (3,), (4,)
    target = torch.zeros(1, 4, 1, 1, 4)
    target[0, 0, ..., 0] = 1  # voxel 0: organ
    target[0, 1, ..., 1] = 1  # voxel 1: kidney; voxels 2, 3: unlabelled
    annotated = torch.tensor([[1.0, 1.0, 0.0, 0.0]])  # the case annotates organ and kidney
    loss = PartialLabelDiceBCELoss(batch_dice=False, disjoint=disjoint_regions([organ, kidney, tumour, other]))
    logits = torch.full((1, 4, 1, 1, 4), 3.0, requires_grad=True)
    loss(logits, target, annotated).backward()
    moved = logits.grad[0, :, 0, 0] != 0
    assert moved[2].tolist() == [True, False, False, False]  # tumour: not in the organ, maybe in the kidney
    assert moved[3].tolist() == [True, True, False, False]  # other: in neither organ nor kidney
    assert torch.all(logits.grad[0, 2:, 0, 0] >= 0)  # pushed down only
    without = PartialLabelDiceBCELoss(batch_dice=False)
    logits.grad = None
    without(logits, target, annotated).backward()
    assert torch.all(logits.grad[0, 2:] == 0)


def test_logit_penalty_adds_mean_squared_logit_of_annotated_pairs_and_bounds_a_right_logit():
    logits, target = logits_and_target(5)
    annotated = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float32)
    plain = PartialLabelDiceBCELoss(batch_dice=False)(logits, target, annotated)
    penalised = PartialLabelDiceBCELoss(batch_dice=False, logit_penalty=0.1)(logits, target, annotated)
    squares = logits.detach().square().mean((2, 3, 4))[annotated == 1].mean()
    assert (penalised - plain).item() == pytest.approx(0.1 * squares.item(), rel=1e-5)
    # a background voxel's logit: BCE alone keeps pushing it down; with the penalty it settles near -4.7
    z = torch.full((1, 1, 1, 1, 1), -3.0, requires_grad=True)
    optimizer = torch.optim.Adam([z], lr=0.05)
    loss = PartialLabelDiceBCELoss(batch_dice=False, weight_dice=0.0, logit_penalty=1e-3)
    for _ in range(2000):
        optimizer.zero_grad()
        loss(z, torch.zeros_like(z), torch.ones(1, 1)).backward()
        optimizer.step()
    assert z.item() == pytest.approx(-4.7, abs=0.3)


@pytest.mark.parametrize("batch_dice", [False, True])
def test_class_weights_count_each_class_as_often_as_its_weight(batch_dice):
    logits, target = logits_and_target(6)
    annotated = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]], dtype=torch.float32)
    weights = torch.tensor([1.0, 3.0, 0.5, 2.0])

    def per_class(k):  # the loss of class k alone
        only = torch.zeros_like(annotated)
        only[:, k] = annotated[:, k]
        return PartialLabelDiceBCELoss(batch_dice=batch_dice, weight_dice=0.0)(logits, target, only), \
            PartialLabelDiceBCELoss(batch_dice=batch_dice, weight_ce=0.0)(logits, target, only)

    bce, dice = zip(*(per_class(k) for k in range(4)))
    pairs = annotated.sum(0)  # BCE: a mean over (case, class) pairs, each counting its class's weight
    expected_bce = sum(b * w * n for b, w, n in zip(bce, weights, pairs)) / (weights * pairs).sum()
    if batch_dice:  # Dice: a mean over the classes present in the batch
        expected_dice = sum(d * w for d, w in zip(dice, weights)) / weights.sum()
    else:  # over the (case, class) pairs with foreground
        counts = (annotated * (target.flatten(2).amax(-1) > 0)).sum(0)
        expected_dice = sum(d * w * n for d, w, n in zip(dice, weights, counts)) / (weights * counts).sum()
    weighted = PartialLabelDiceBCELoss(batch_dice=batch_dice, class_weights=weights)(logits, target, annotated)
    torch.testing.assert_close(weighted, expected_bce + expected_dice)
    unweighted = PartialLabelDiceBCELoss(batch_dice=batch_dice)(logits, target, annotated)
    assert abs(weighted.item() - unweighted.item()) > 1e-3


def test_class_weights_make_up_for_rare_annotation_of_anatomy_not_of_lesions():
    from nnunet_clip.partial_labels import AnnotatedClasses

    dataset_json = {"annotated_classes": {"a_1": ["liver", "spleen"], "a_2": ["liver", "spleen"], "b_1": ["liver"],
                                          "c_1": ["liver", "liver tumor"]}}
    classes = ["liver", "spleen", "liver tumor", "rectum"]
    annotations = AnnotatedClasses(dataset_json, classes)
    torch.testing.assert_close(annotations.class_weights(1.0, lesions=["Liver Tumour"]),
                               torch.tensor([1.0, 2.0, 1.0, 1.0]))  # rectum: annotated nowhere
    torch.testing.assert_close(annotations.class_weights(0.5), torch.tensor([1.0, 2 ** 0.5, 2.0, 1.0]))
    assert torch.equal(AnnotatedClasses({}, classes).class_weights(1.0), torch.ones(4))  # fully labelled
