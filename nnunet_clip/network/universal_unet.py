"""The Universal Model around an nnU-Net backbone.

Any dynamic-network-architectures U-Net whose decoder is a ``UNetDecoder``/``UNetResDecoder``
(PlainConvUNet, ResidualEncoderUNet, ResidualUNet: the default plans and the ResEnc presets)
keeps its encoder and decoder, so the decoder's own forward, its deep-supervision switch
(``decoder.deep_supervision``, toggled by nnU-Net) and its output order are unchanged. Each decoder
output goes through a 1×1×1 projection (``projections``) to the small shared feature map the
dynamic heads read. On top: the controller and the per-class dynamic heads, one set of head
parameters per deep-supervision output.

Everything that depends on the class set lives in ``decoder.seg_layers`` (``ClassTable``), where a
stock nnU-Net network has its class-specific output layers: the class embeddings, which classes
some training case annotated (the others output ``UNTRAINED_LOGIT``), the class names (extra state)
and, optionally, per-class head parameters. nnU-Net's ``-pretrained_weights`` transfers every
weight but the segmentation layers, so a universal checkpoint starts a model with any class set:
the backbone, projections and controller carry over and every class, old or new, gets its head from
its text embedding (with ``transfer.carry_head_offsets``, a carried class keeps its own head offsets). The
embeddings reach the controller centred on ``embedding_mean``, the mean of the classes the
controller was first trained with (carried over too).

In training, ``computing_only(mask)`` runs each case's heads for its annotated classes alone: the
masked loss gives the other (case, class) pairs zero gradient, so their logits would be wasted work
(masked back-propagation, paper §3.3). Their outputs are 0 and carry no gradient.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import torch
from torch import nn

from nnunet_clip.errors import InputError
from nnunet_clip.network.controller import INITIAL_LOGIT, HeadParameterController
from nnunet_clip.network.dynamic_heads import DynamicHeads


LOGIT_BOUND = 50.0
"""Outside training the logits are clipped to ±LOGIT_BOUND (sigmoid 2e-22 and 1 − 2e-22). The heads'
logits are unbounded and grow with training (several hundred after a few thousand iterations),
and nnU-Net's sliding window sums Gaussian-weighted logits (weights up to 10, up to 8 windows
per voxel in 3D) in float16, which ends at 65504: beyond about ±800 its prediction stops with
"Encountered inf in predicted array". The clip keeps each window's signs; where overlapping windows
disagree on a voxel, it keeps one window's hundreds from outvoting the others."""

CLASS_TABLE = "decoder.seg_layers"
"""Where the class-dependent state is in the state dict (``ClassTable``)."""

UNTRAINED_LOGIT = -LOGIT_BOUND
"""Logit of a class that no training case annotated (absent). Its head never learned; left alone it
outputs noise that can cover the whole image, and nnU-Net's label-map export paints later classes
over earlier ones, so one such class could erase the trained ones."""


class UniversalUNet(nn.Module):
    """CLIP-conditioned per-class sigmoid heads on an nnU-Net encoder-decoder."""

    def __init__(self, backbone: nn.Module, class_names: Sequence[str], embedding_dim: int,
                 head_channels: Sequence[int] = (8, 8, 1), head_in_channels: int = 8, controller_hidden: int = 256,
                 normalized_head_input: bool = False, normalized_heads: bool = False,
                 class_head_offsets: bool = False):
        super().__init__()
        self.encoder = backbone.encoder
        self.decoder = backbone.decoder
        levels = len(self.decoder.seg_layers)
        # in the order of the decoder's outputs: full resolution first
        self.projections = nn.ModuleList(self._projection(layer.in_channels, head_in_channels, normalized_head_input)
                                         for layer in reversed(self.decoder.seg_layers))
        self.heads = DynamicHeads(head_in_channels, head_channels, normalized_heads)
        self.decoder.seg_layers = ClassTable(levels, class_names, embedding_dim,
                                             self.heads.num_parameters if class_head_offsets else 0)
        self.register_buffer("embedding_mean", torch.zeros(embedding_dim))
        self.computed_classes: torch.Tensor | None = None
        self.autocast_dtype: torch.dtype | None = None
        """Set: the forward pass runs under autocast in this dtype and returns float32 logits (the
        trainer sets bfloat16 on CPUs that compute in it, ``nnUNetTrainerCLIP.use_cpu_fast_paths``)."""
        self.controller = HeadParameterController(embedding_dim, self.encoder.output_channels[-1], levels,
                                                  self.heads.initial_parameters(INITIAL_LOGIT),
                                                  controller_hidden)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if "class_embeddings" in state_dict:  # before the class state moved into decoder.seg_layers
            raise InputError("the checkpoint has the network layout of an older nnunet-clip (class embeddings "
                             "outside the segmentation layers); retrain the model")
        return super().load_state_dict(state_dict, strict, assign)

    @property
    def classes(self) -> ClassTable:
        return self.decoder.seg_layers

    @property
    def class_names(self) -> list[str]:
        return self.classes.class_names

    @property
    def class_embeddings(self) -> torch.Tensor:
        return self.classes.class_embeddings

    @property
    def class_trained(self) -> torch.Tensor:
        return self.classes.class_trained

    def _projection(self, in_channels: int, out_channels: int, normalized: bool) -> nn.Module:
        """A decoder output → the heads' input: a 1×1×1 convolution, then (``normalized``) the backbone's
        normalisation and nonlinearity, so the heads read features of a fixed scale."""
        encoder = self.encoder
        conv = encoder.conv_op(in_channels, out_channels, 1, 1, 0, bias=True)
        if not normalized:
            return conv
        return nn.Sequential(conv, encoder.norm_op(out_channels, **(encoder.norm_op_kwargs or {})),
                             encoder.nonlin(**(encoder.nonlin_kwargs or {})))

    def forward(self, x: torch.Tensor, class_embeddings: torch.Tensor | None = None,
                trained: torch.Tensor | None = None, head_offsets: torch.Tensor | None = None):
        """Logits of every class (or of the given (K', D) embeddings), one map per deep-supervision level.

        ``trained`` (K',) bool: outputs that are False get ``UNTRAINED_LOGIT``; by default the
        model's own classes follow ``class_trained`` and given embeddings are all computed.
        ``head_offsets`` (K', levels, P): added to the given embeddings' generated head parameters (the
        model's own classes have theirs, ``ClassTable.head_offsets``). Outside training the logits are
        clipped to ±``LOGIT_BOUND``."""
        if self.autocast_dtype is None:
            logits = self._logits(x, class_embeddings, trained, head_offsets)
        else:
            with torch.autocast(x.device.type, dtype=self.autocast_dtype):
                logits = self._logits(x, class_embeddings, trained, head_offsets)
            logits = _each_level(torch.Tensor.float, logits)
        if self.training:
            return logits
        return _each_level(lambda level: level.clamp(-LOGIT_BOUND, LOGIT_BOUND), logits)

    def _logits(self, x: torch.Tensor, class_embeddings: torch.Tensor | None, trained: torch.Tensor | None,
                head_offsets: torch.Tensor | None):
        skips = self.encoder(x)
        features = self.decoder(skips)
        image_features = skips[-1].mean(dim=tuple(range(2, skips[-1].ndim)))
        embeddings = self.class_embeddings if class_embeddings is None else class_embeddings
        params = self.controller(embeddings - self.embedding_mean.to(embeddings.dtype), image_features)
        if class_embeddings is None:
            head_offsets = self.classes.head_offsets
            if trained is None:
                trained = self.class_trained
        if head_offsets is not None:
            params = params + head_offsets.to(params.dtype)
        untrained = None if trained is None or bool(trained.all()) else ~trained.view(1, -1, *[1] * (x.ndim - 2))
        if isinstance(features, torch.Tensor):  # deep supervision off: the full-resolution output only
            return _absent(self._heads(self.projections[0](features), params[:, :, 0]), untrained)
        return [_absent(self._heads(projection(f), params[:, :, level]), untrained)
                for level, (projection, f) in enumerate(zip(self.projections, features))]

    def _heads(self, features: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, *S) of the heads ``params`` (B, K, P); with ``computed_classes`` only those per case."""
        if self.computed_classes is None or bool(self.computed_classes.all()):
            return self.heads(features, params)
        logits = features.new_zeros((params.shape[0], params.shape[1], *features.shape[2:]))
        for case, classes in enumerate(self.computed_classes.to(params.device)):
            index = classes.nonzero()[:, 0]
            if len(index):
                logits[case, index] = self.heads(features[case:case + 1], params[case:case + 1, index])[0]
        return logits

    @contextmanager
    def computing_only(self, classes: torch.Tensor):
        """Within the context, compute only the (case, class) logits where ``classes`` (B, K) is True."""
        self.computed_classes = classes.bool()
        try:
            yield
        finally:
            self.computed_classes = None

    def set_class_embeddings(self, embeddings: torch.Tensor) -> None:
        """Copy (K, D) embeddings, in the order of ``class_names``, and their mean into the buffers."""
        if embeddings.shape != self.class_embeddings.shape:
            raise ValueError(f"expected class embeddings of shape {tuple(self.class_embeddings.shape)}, "
                             f"got {tuple(embeddings.shape)}")
        self.class_embeddings.copy_(embeddings)
        self.embedding_mean.copy_(embeddings.mean(0))



def _each_level(fn, logits):
    """``fn`` applied to the logits, or to each deep-supervision level's."""
    return fn(logits) if isinstance(logits, torch.Tensor) else [fn(level) for level in logits]


class ClassTable(nn.ModuleList):
    """The decoder's ``seg_layers``: one identity per decoder output (the decoder's features pass to the
    projections unchanged) and the class-dependent state, which nnU-Net's pretrained-weights loader
    leaves out by name.

    ``head_parameters`` > 0: each class also has free head parameters of its own per level
    (``head_offsets``, starting at zero), added to those the controller generates from its embedding.
    The controller's weights are shared by all classes, so a class whose heads the shared updates left
    behind gets a small share of each Adam step; its own offsets get a full step."""

    def __init__(self, num_levels: int, class_names: Sequence[str], embedding_dim: int, head_parameters: int = 0):
        super().__init__(nn.Identity() for _ in range(num_levels))
        self.class_names = list(class_names)
        self.register_buffer("class_embeddings", torch.zeros(len(self.class_names), embedding_dim))
        self.register_buffer("class_trained", torch.ones(len(self.class_names), dtype=torch.bool))
        self.head_offsets = (nn.Parameter(torch.zeros(len(self.class_names), num_levels, head_parameters))
                             if head_parameters else None)

    def get_extra_state(self) -> dict:
        return {"class_names": self.class_names}

    def set_extra_state(self, state: dict) -> None:
        if state["class_names"] != self.class_names:
            raise ValueError(f"checkpoint classes {state['class_names']} differ from the network's {self.class_names}")


def _absent(logits: torch.Tensor, untrained: torch.Tensor | None) -> torch.Tensor:
    """``logits`` (B, K, *S) with the ``untrained`` (1, K, 1, ...) classes set to ``UNTRAINED_LOGIT``."""
    return logits if untrained is None else logits.masked_fill(untrained, UNTRAINED_LOGIT)
