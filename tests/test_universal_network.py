"""The Universal Model on nnU-Net plans backbones: output shapes, class subsets, what checkpoints carry."""
from __future__ import annotations

import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager

from nnunet_clip.errors import InputError
from nnunet_clip.network.build import build_universal_network, universal_model_plans

CLASSES = ["spleen", "liver", "liver tumor"]
COMMON = {
    "n_stages": 4, "features_per_stage": [4, 8, 16, 16], "conv_op": "torch.nn.modules.conv.Conv3d",
    "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
    "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]],
    "n_conv_per_stage_decoder": [1, 1, 1], "conv_bias": True,
    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
    "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
    "nonlin_kwargs": {"inplace": True},
}
ARCHITECTURES = {  # as nnU-Net's default planner and nnUNetPlannerResEncM write them
    "PlainConvUNet": ("dynamic_network_architectures.architectures.unet.PlainConvUNet",
                      {**COMMON, "n_conv_per_stage": [2, 2, 2, 2]}),
    "ResidualEncoderUNet": ("dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                            {**COMMON, "n_blocks_per_stage": [1, 2, 2, 2]}),
}


class Plans:
    def __init__(self):
        self.plans = {"universal_model": universal_model_plans(CLASSES, 6, None)}


def plain_network(deep_supervision: bool):
    """The Universal Model on the PlainConvUNet plans, with random class embeddings."""
    network = build_universal_network(Plans(), configuration("PlainConvUNet"), 1, len(CLASSES),
                                      enable_deep_supervision=deep_supervision)
    network.set_class_embeddings(torch.randn(len(CLASSES), 6))
    return network


def configuration(architecture: str) -> ConfigurationManager:
    network_class, kwargs = ARCHITECTURES[architecture]
    return ConfigurationManager({
        "architecture": {"network_class_name": network_class, "arch_kwargs": kwargs,
                         "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
        "patch_size": [8, 16, 16], "batch_size": 2, "spacing": [2.0, 1.0, 1.0], "batch_dice": True,
    })


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_deep_supervision_outputs_have_nnunet_shapes(architecture):
    config = configuration(architecture)
    network = build_universal_network(Plans(), config, 1, len(CLASSES), enable_deep_supervision=True)
    network.set_class_embeddings(torch.randn(len(CLASSES), 6))
    stock = get_network_from_plans(config.network_arch_class_name, config.network_arch_init_kwargs,
                                   config.network_arch_init_kwargs_req_import, 1, len(CLASSES),
                                   deep_supervision=True)
    x = torch.randn(2, 1, 8, 16, 16)
    outputs, expected = network(x), stock(x)
    assert [o.shape for o in outputs] == [e.shape for e in expected]
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 8, 16, 16), (2, 3, 8, 8, 8), (2, 3, 4, 4, 4)]
    network.decoder.deep_supervision = False  # what nnU-Net's set_deep_supervision_enabled toggles
    assert network(x).shape == (2, 3, 8, 16, 16)


def test_a_subset_of_embeddings_computes_only_those_classes_with_the_same_logits():
    network = build_universal_network(Plans(), configuration("PlainConvUNet"), 1, len(CLASSES),
                                      enable_deep_supervision=False).eval()
    embeddings = torch.randn(len(CLASSES), 6)
    network.set_class_embeddings(embeddings)
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        full, subset = network(x), network(x, embeddings[[2, 0]])
    assert subset.shape[1] == 2
    torch.testing.assert_close(subset, full[:, [2, 0]])


def test_computing_only_the_annotated_classes_gives_the_masked_loss_the_same_gradients():
    from nnunet_clip.loss import PartialLabelDiceBCELoss

    torch.manual_seed(0)
    network = plain_network(True)
    x = torch.randn(2, 1, 8, 16, 16)
    annotated = torch.tensor([[True, False, True], [False, True, False]])
    loss = PartialLabelDiceBCELoss(batch_dice=True)

    def gradients(restrict: bool):
        network.zero_grad()
        if restrict:
            with network.computing_only(annotated):
                outputs = network(x)
        else:
            outputs = network(x)
        sum(loss(o, (o.detach() > 0).float().roll(1, -1), annotated) for o in outputs).backward()
        return outputs, {n: p.grad.clone() for n, p in network.named_parameters() if p.grad is not None}

    full_outputs, full = gradients(False)
    outputs, restricted = gradients(True)
    for o, f in zip(outputs, full_outputs):
        torch.testing.assert_close(o[annotated], f[annotated])
        assert (o[~annotated] == 0).all()
    assert full.keys() == restricted.keys()
    for name in full:
        torch.testing.assert_close(restricted[name], full[name], rtol=1e-4, atol=1e-6)
    assert network.computed_classes is None  # the restriction ends with the context


def test_classes_no_training_case_annotated_are_predicted_absent_in_both_prediction_paths():
    from nnunet_clip.inference.predictor import SelectedHeads
    from nnunet_clip.network.universal_unet import UNTRAINED_LOGIT

    network = plain_network(False).eval()
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        before = network(x)
        network.class_trained[1] = False  # "liver": annotated by no training case
        after = network(x)
        selected = SelectedHeads(network, [1, 2], torch.randn(1, 6))(x)  # nnunet-clip predict; one zero-shot class
    assert torch.all(after[:, 1] == UNTRAINED_LOGIT)
    torch.testing.assert_close(after[:, [0, 2]], before[:, [0, 2]])
    assert torch.all(selected[:, 0] == UNTRAINED_LOGIT)
    torch.testing.assert_close(selected[:, 1], before[:, 2])
    assert selected[:, 2].std() > 0  # a prompted class is computed, never treated as untrained
    assert "decoder.seg_layers.class_trained" in network.state_dict()


def test_state_dict_carries_embeddings_and_class_names_in_the_segmentation_layers():
    network = build_universal_network(Plans(), configuration("PlainConvUNet"), 1, len(CLASSES))
    network.set_class_embeddings(torch.arange(18.0).reshape(3, 6))
    state = network.state_dict()
    assert torch.equal(state["decoder.seg_layers.class_embeddings"], torch.arange(18.0).reshape(3, 6))
    assert state["decoder.seg_layers._extra_state"] == {"class_names": CLASSES}
    assert [k for k in state if "class" in k and ".seg_layers." not in k] == []  # nnU-Net's loader skips them
    other = build_universal_network(Plans(), configuration("PlainConvUNet"), 1, len(CLASSES))
    other.load_state_dict(state)
    assert torch.equal(other.class_embeddings, state["decoder.seg_layers.class_embeddings"])
    old_layout = {k.replace("decoder.seg_layers.", ""): v for k, v in state.items()}
    with pytest.raises(InputError, match="older nnunet-clip .*; retrain the model"):
        other.load_state_dict(old_layout)
    state["decoder.seg_layers._extra_state"] = {"class_names": ["liver", "spleen", "liver tumor"]}
    with pytest.raises(ValueError, match="checkpoint classes"):
        other.load_state_dict(state)


def test_initial_heads_pass_the_signal_like_a_he_initialised_convolution_stack():
    torch.manual_seed(0)
    network = plain_network(False)
    features = torch.randn(2, 8, 8, 16, 16)  # unit-variance input to the heads
    params = network.controller(network.class_embeddings, torch.randn(2, 16))[:, :, 0]
    logits = network.heads(features, params)
    # He initialisation keeps the variance through the ReLU layers: the logits vary like the input
    assert 0.3 < logits.std(dim=(2, 3, 4)).mean().item() < 3
    assert not torch.allclose(params[:, 0], params[:, 1])  # the classes start from different heads


def test_nearly_parallel_embeddings_still_start_the_classes_from_different_heads():
    """CLIP embeddings of one prompt template agree in most of their length; centring and scaling them
    gives each class a head of its own, as a stock convolution head has."""
    torch.manual_seed(0)
    network = build_universal_network(Plans(), configuration("PlainConvUNet"), 1, len(CLASSES),
                                      enable_deep_supervision=False)
    common = torch.randn(6)
    embeddings = common + 0.1 * torch.randn(len(CLASSES), 6)  # pairwise cosine about 0.99
    network.set_class_embeddings(embeddings)
    params = network.controller(embeddings - network.embedding_mean, torch.randn(1, 16))[0, :, 0]
    spread = (params - params.mean(0)).norm(dim=1).mean() / params.mean(0).norm()
    assert spread > 0.1  # unit-norm, uncentred embeddings gave about 0.001


def test_logits_do_not_change_when_every_embedding_moves_by_the_same_vector():
    network = build_universal_network(Plans(), configuration("PlainConvUNet"), 1, len(CLASSES),
                                      enable_deep_supervision=False).eval()
    embeddings = torch.randn(len(CLASSES), 6)
    x = torch.randn(1, 1, 8, 16, 16)
    network.set_class_embeddings(embeddings)
    with torch.no_grad():
        before = network(x)
        network.set_class_embeddings(embeddings + torch.randn(6))
        after = network(x)
    torch.testing.assert_close(after, before)


def test_controller_output_layer_starts_like_a_linear_layer_and_takes_hidden_times_smaller_adam_steps():
    from nnunet_clip.network.controller import OutputLayer

    torch.manual_seed(0)
    plain = torch.nn.Linear(256, 10)
    torch.manual_seed(0)
    scaled = OutputLayer(256, 10)
    scaled.bias.data.zero_(), plain.bias.data.zero_()
    x = torch.rand(4, 256)
    torch.testing.assert_close(scaled(x), plain(x))
    moves = []
    for layer in (plain, scaled):
        before = layer(x).detach()
        optimizer = torch.optim.Adam([layer.weight], lr=1e-3)
        layer(x).sum().backward()
        optimizer.step()
        moves.append((layer(x).detach() - before).abs().mean())
    torch.testing.assert_close(moves[1] * 256, moves[0], rtol=1e-3, atol=0)


def test_autocast_returns_float32_logits_close_to_the_float32_networks_and_float32_gradients():
    torch.manual_seed(0)
    network = plain_network(True)
    x = torch.randn(2, 1, 8, 16, 16)
    reference = network(x)
    network.autocast_dtype = torch.bfloat16
    outputs = network(x)
    assert [o.dtype for o in outputs] == [torch.float32] * 3
    for output, expected in zip(outputs, reference):
        assert not torch.equal(output, expected)  # computed in bfloat16 (8 significant bits)
        torch.testing.assert_close(output, expected, atol=0.1 * expected.abs().max().item(), rtol=0.05)
    sum(o.mean() for o in outputs).backward()
    gradient = next(network.controller.parameters()).grad
    assert gradient.dtype == torch.float32 and gradient.abs().sum() > 0


def test_logits_are_clipped_outside_training_only_with_their_signs_kept():
    from nnunet_clip.network.universal_unet import LOGIT_BOUND

    network = plain_network(False)
    network.heads.register_forward_hook(lambda module, args, out: out * 1e4)
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        training = network.train()(x)
        inference = network.eval()(x)
    assert training.abs().max() > 10 * LOGIT_BOUND
    assert inference.abs().max() == LOGIT_BOUND
    assert torch.equal(torch.sign(inference), torch.sign(training))
    torch.testing.assert_close(inference, training.clamp(-LOGIT_BOUND, LOGIT_BOUND))
