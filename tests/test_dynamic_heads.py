"""The batched dynamic heads against explicit per-class 1×1×1 convolutions."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnunet_clip.network import dynamic_heads
from nnunet_clip.network.dynamic_heads import DynamicHeads, split_parameters


def explicit_heads(features: torch.Tensor, params: torch.Tensor, heads: DynamicHeads) -> torch.Tensor:
    """One conv3d stack per (case, class) with leaky ReLUs between the layers."""
    layers = split_parameters(params, heads.in_channels, heads.channels)
    out = torch.empty(params.shape[0], params.shape[1], *features.shape[2:], dtype=features.dtype)
    for b in range(params.shape[0]):
        for k in range(params.shape[1]):
            h = features[b:b + 1]
            for i, (w, bias) in enumerate(layers):
                h = F.conv3d(h, w[b, k][..., None, None, None], bias[b, k])
                if i < len(layers) - 1:
                    h = F.leaky_relu(h, dynamic_heads.NEGATIVE_SLOPE)
            out[b, k] = h[0, 0]
    return out


@pytest.mark.parametrize("chunk_elements", [dynamic_heads.CHUNK_ELEMENTS["cpu"], 1000])
def test_batched_heads_equal_explicit_convolutions_with_gradients(monkeypatch, chunk_elements):
    monkeypatch.setitem(dynamic_heads.CHUNK_ELEMENTS, "cpu", chunk_elements)  # 1000: many chunks, a ragged last one
    heads = DynamicHeads(8, (8, 8, 1))
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 8, 5, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    params = torch.randn(2, 3, heads.num_parameters, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(2, 3, 5, 6, 7, generator=g, dtype=torch.float64)

    batched = heads(features, params)
    grad_features, grad_params = torch.autograd.grad((batched * upstream).sum(), (features, params))
    expected = explicit_heads(features, params, heads)
    expected_features, expected_params = torch.autograd.grad((expected * upstream).sum(), (features, params))

    assert batched.shape == (2, 3, 5, 6, 7)
    torch.testing.assert_close(batched, expected)
    torch.testing.assert_close(grad_features, expected_features)
    torch.testing.assert_close(grad_params, expected_params)


def test_heads_pass_gradcheck():
    heads = DynamicHeads(3, (4, 1))
    features = torch.randn(1, 3, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    params = torch.randn(1, 2, heads.num_parameters, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, p: heads(f, p), (features, params))


def test_parameter_count_is_that_of_the_paper_heads():
    # 8→8: 64 + 8, 8→8: 64 + 8, 8→1: 8 + 1
    assert DynamicHeads(8, (8, 8, 1)).num_parameters == 153
    with pytest.raises(ValueError, match="expected 153 head parameters"):
        split_parameters(torch.zeros(1, 1, 150), 8, (8, 8, 1))


@pytest.mark.parametrize("dtype, tolerance", [(torch.bfloat16, 4e-3), (torch.float16, 5e-4)])
def test_weight_gradients_of_reduced_precision_heads_are_summed_in_float32(monkeypatch, dtype, tolerance):
    """Under autocast the heads run in float16 (CUDA) or bfloat16 (CPU): over 1024 chunks their weight
    gradients must stay within one rounding to ``dtype`` of the float32 gradients of the same inputs."""
    monkeypatch.setitem(dynamic_heads.CHUNK_ELEMENTS, "cpu", 2 * 3 * 8 * 16)  # 16 voxels a chunk
    heads = DynamicHeads(8, (8, 8, 1))
    g = torch.Generator().manual_seed(0)
    features = torch.rand(2, 8, 16, 32, 32, generator=g).to(dtype)  # positive: the sums grow chunk by chunk
    params = (torch.randn(2, 3, heads.num_parameters, generator=g) * 0.5).to(dtype)
    upstream = torch.rand(2, 3, 16, 32, 32, generator=g).to(dtype)

    def params_gradient(f, p, u):
        p = p.clone().requires_grad_()
        return torch.autograd.grad(heads(f, p), p, u)[0]

    reduced = params_gradient(features, params, upstream)
    expected = params_gradient(features.float(), params.float(), upstream.float())
    assert reduced.dtype == dtype
    assert (reduced.float() - expected).norm() / expected.norm() < tolerance


def test_normalized_heads_have_gains_that_training_cannot_grow():
    """Scaling a normalised head's generated weights changes nothing: its hidden rows have norm √2 and
    its logit row the gain its last parameter sets, at most MAX_LOGIT_SCALE."""
    heads = DynamicHeads(8, (8, 8, 1), normalized=True)
    assert heads.num_parameters == 154
    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, 8, 4, 4, 4, generator=g)
    params = torch.randn(1, 2, heads.num_parameters, generator=g)
    layers = split_parameters(heads._normalize(params), 8, (8, 8, 1))
    for w, _ in layers[:-1]:
        torch.testing.assert_close(w.norm(dim=-1), torch.full(w.shape[:-1], 2 ** 0.5))
    gain = dynamic_heads.MAX_LOGIT_SCALE * torch.sigmoid(params[..., -1])
    torch.testing.assert_close(layers[-1][0].norm(dim=-1)[..., 0], gain)
    scaled, offset = params.clone(), 0
    for w_count, b_count in ((64, 8), (64, 8), (8, 1)):  # every weight ×100, biases kept
        scaled[..., offset:offset + w_count] *= 100.0
        offset += w_count + b_count
    torch.testing.assert_close(heads(features, scaled), heads(features, params))
    assert DynamicHeads(8, (8, 8, 1)).initial_parameters(-2.0)[-1] == -2.0  # the logit bias
