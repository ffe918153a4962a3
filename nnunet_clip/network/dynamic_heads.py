"""Per-class segmentation heads whose weights are generated per case (paper §3.2).

Each class k of each case b has its own small 1×1×1 convolution stack (by default 8 → 8 → 8 → 1
channels, leaky ReLU between layers) whose weights and biases θ_bk come from the controller. All
classes are evaluated at once with batched matrix products: the first layer of every class reads
the same shared features, so it is a single (K·8 × 8) product per case; the later layers are
block-diagonal and run as one batched product over (case, class).

The hidden activations of all classes are K·8 channels at full resolution, several times the size
of the network's own feature maps. ``DynamicHeadsFunction`` therefore never keeps them: the forward
pass runs in chunks of voxels and stores only its inputs, and the backward pass recomputes each
chunk's activations before using them. The weight gradients are sums over every voxel of every
chunk: they are computed and summed in float32 whatever the features' dtype (float16 or bfloat16
under autocast), so that no chunk's share is rounded away in a reduced-precision running sum.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

NEGATIVE_SLOPE = 1e-2
"""Of the leaky ReLU between head layers (nnU-Net's). With a plain ReLU a head dies once the
controller shifts its hidden biases below the features' range: it outputs a constant and gets no
gradient."""

CHUNK_ELEMENTS = {"cpu": 2 ** 20, "cuda": 2 ** 22}
"""Hidden-activation elements processed at once (per layer), per device type; bounds the extra memory
of the heads. On a CPU a chunk of 4 MB stays in cache: a training pass of the demo's network is 17 %
faster than with the GPU's size (docs/performance.md)."""


def head_parameter_count(in_channels: int, channels: Sequence[int]) -> int:
    """Weights and biases of one class's head."""
    return sum(c_out * (c_in + 1) for c_in, c_out in zip((in_channels, *channels[:-1]), channels))


def split_parameters(params: torch.Tensor, in_channels: int, channels: Sequence[int]):
    """Split flat head parameters (B, K, P) into per-layer weights (B, K, out, in) and biases (B, K, out)."""
    shapes = list(zip(channels, (in_channels, *channels[:-1])))
    expected = head_parameter_count(in_channels, channels)
    if params.shape[-1] != expected:
        raise ValueError(f"expected {expected} head parameters per class, got {params.shape[-1]}")
    layers, offset = [], 0
    for c_out, c_in in shapes:
        w = params[..., offset:offset + c_out * c_in].unflatten(-1, (c_out, c_in))
        offset += c_out * c_in
        layers.append((w, params[..., offset:offset + c_out]))
        offset += c_out
    return layers


def _layer(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, first: bool) -> torch.Tensor:
    """One 1×1×1 convolution of every (case, class). h: (B, C, n) shared or (B·K, C, n) per class."""
    batch, classes, c_out, c_in = w.shape
    rows = (batch, classes * c_out) if first else (batch * classes, c_out)  # shared input: one product per case
    out = torch.bmm(w.reshape(*rows, c_in), h)
    return out.add_(b.reshape(*rows, 1))


def _forward_chunk(x: torch.Tensor, layers) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Hidden activations (after the leaky ReLU, (B·K, C, n)) and logits (B·K, 1, n) of a chunk x (B, C, n)."""
    batch, classes, c_out, _ = layers[0][0].shape
    activation = nn.functional.leaky_relu_
    hidden = [activation(_layer(x, *layers[0], first=True), NEGATIVE_SLOPE).reshape(batch * classes, c_out, -1)]
    for w, b in layers[1:-1]:
        hidden.append(activation(_layer(hidden[-1], w, b, first=False), NEGATIVE_SLOPE))
    return hidden, _layer(hidden[-1], *layers[-1], first=False)


def _product(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Batched product a @ b, its sums computed and returned in ``dtype``."""
    return torch.bmm(a.to(dtype), b.to(dtype))


def _chunk_size(batch: int, classes: int, width: int, device: torch.device) -> int:
    elements = CHUNK_ELEMENTS.get(device.type, CHUNK_ELEMENTS["cuda"])
    return max(1, elements // (batch * classes * width))


class DynamicHeadsFunction(torch.autograd.Function):
    """logits (B, K, n) of per-class heads on shared features x (B, C, n); recomputes in backward."""

    @staticmethod
    def forward(ctx, x, params, in_channels: int, channels: tuple[int, ...]):
        layers = split_parameters(params, in_channels, channels)
        batch, classes = params.shape[:2]
        n = x.shape[-1]
        out = x.new_empty((batch, classes, n))
        step = _chunk_size(batch, classes, max(channels), x.device)
        for s in range(0, n, step):
            out[..., s:s + step] = _forward_chunk(x[..., s:s + step], layers)[1].reshape(batch, classes, -1)
        ctx.save_for_backward(x, params)
        ctx.in_channels, ctx.channels = in_channels, channels
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, params = ctx.saved_tensors
        layers = split_parameters(params, ctx.in_channels, ctx.channels)
        batch, classes = params.shape[:2]
        summed = torch.promote_types(params.dtype, torch.float32)  # float64 stays float64
        grad_layers = [(torch.zeros_like(w, dtype=summed), torch.zeros_like(b, dtype=summed)) for w, b in layers]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        n = x.shape[-1]
        step = _chunk_size(batch, classes, max(ctx.channels), x.device)
        for s in range(0, n, step):
            xs = x[..., s:s + step]
            hidden, logits = _forward_chunk(xs, layers)
            g = grad_out[..., s:s + step].reshape(batch * classes, 1, -1).to(logits.dtype)
            for i in range(len(layers) - 1, 0, -1):  # per-class layers, top down
                w, _ = layers[i]
                gw, gb = grad_layers[i]
                gw += _product(g, hidden[i - 1].transpose(1, 2), summed).reshape(gw.shape)
                gb += g.sum(-1, dtype=summed).reshape(gb.shape)
                g = torch.bmm(w.reshape(batch * classes, *w.shape[-2:]).transpose(1, 2), g)
                g = torch.ops.aten.leaky_relu_backward(g, hidden[i - 1], NEGATIVE_SLOPE, True)
            w, _ = layers[0]
            gw, gb = grad_layers[0]
            g = g.reshape(batch, classes * w.shape[-2], -1)
            gw += _product(g, xs.transpose(1, 2), summed).reshape(gw.shape)
            gb += g.sum(-1, dtype=summed).reshape(gb.shape)
            if grad_x is not None:
                grad_x[..., s:s + step] = torch.bmm(w.reshape(batch, -1, w.shape[-1]).transpose(1, 2), g)
        grad_params = torch.cat([t.flatten(2) for pair in grad_layers for t in pair], dim=-1).to(params.dtype)
        return grad_x, grad_params, None, None


MAX_LOGIT_SCALE = 20.0
"""Largest gain of a normalised head's logit layer (``DynamicHeads(normalized=True)``)."""


class DynamicHeads(nn.Module):
    """Applies generated per-class heads to a feature map: (B, C, *S), (B, K, P) → logits (B, K, *S).

    ``normalized``: every generated weight row is scaled to a fixed norm (√2 in the hidden layers, He's
    gain; in the logit layer a gain in (0, ``MAX_LOGIT_SCALE``) that the class's last parameter sets
    through a sigmoid), so the heads' gains cannot grow with training and, on normalised features,
    their logits stay bounded.
    """

    def __init__(self, in_channels: int = 8, channels: Sequence[int] = (8, 8, 1), normalized: bool = False):
        super().__init__()
        if channels[-1] != 1:
            raise ValueError("the last head layer must have one output channel (one logit per class)")
        self.in_channels = in_channels
        self.channels = tuple(channels)
        self.normalized = normalized

    def initial_parameters(self, logit_bias: float = 0.0) -> torch.Tensor:
        """One head's parameters (P,) as nnU-Net would initialise a convolution stack: He-normal weights
        (a=1e-2, LeakyReLU-like) for the hidden layers, variance-preserving for the logit layer, zero biases
        but the logit's (``logit_bias``)."""
        flat = []
        for i, (c_in, c_out) in enumerate(zip((self.in_channels, *self.channels[:-1]), self.channels)):
            gain = 1.0 if i == len(self.channels) - 1 else 2.0
            flat += [torch.randn(c_out * c_in) * (gain / c_in) ** 0.5, torch.zeros(c_out)]
        flat[-1] += logit_bias
        if self.normalized:  # the logit layer's gain starts at 1, as the He-initialised weights have it
            flat.append(torch.logit(torch.tensor([1.0 / MAX_LOGIT_SCALE])))
        return torch.cat(flat)

    @property
    def num_parameters(self) -> int:
        """Generated parameters per class: weights and biases of every layer (and the logit gain if normalised)."""
        return head_parameter_count(self.in_channels, self.channels) + self.normalized

    def forward(self, features: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        spatial = features.shape[2:]
        params = params.to(features.dtype)
        if self.normalized:
            params = self._normalize(params)
        logits = DynamicHeadsFunction.apply(features.flatten(2), params, self.in_channels, self.channels)
        return logits.unflatten(2, spatial)

    def _normalize(self, params: torch.Tensor) -> torch.Tensor:
        """Flat parameters with every weight row at its fixed norm and the logit layer's at its gain."""
        layers = split_parameters(params[..., :-1], self.in_channels, self.channels)
        gains = [2.0 ** 0.5] * (len(layers) - 1) + [MAX_LOGIT_SCALE * torch.sigmoid(params[..., -1:, None])]
        flat = []
        for (w, b), gain in zip(layers, gains):
            w = w * (gain / w.norm(dim=-1, keepdim=True).clamp_min(1e-6))
            flat += [w.flatten(-2), b]
        return torch.cat(flat, dim=-1)
