"""The text-driven controller: θ_k = MLP(w_k ⊕ f) (paper §3.2).

w_k is the embedding of class k (CLIP text or one-hot), f the globally pooled bottleneck feature
of the case. One MLP produces the head parameters of every deep-supervision level at once.

With a default-initialised output layer the generated head weights are several times smaller
than a convolution's He initialisation, so the signal fades through the three head layers and
training barely moves. The output layer's bias therefore starts as one He-initialised head
(shared by all classes and levels) and its weights start small.
"""
from __future__ import annotations

import torch
from torch import nn


INITIAL_SPREAD = 0.1
"""Scale of the output layer's initial weights: how far the classes' initial heads lie from the shared start."""


class HeadParameterController(nn.Module):
    """(K, D) class embeddings and (B, F) image features → head parameters (B, K, levels, P)."""

    def __init__(self, embedding_dim: int, feature_dim: int, num_levels: int, initial_head: torch.Tensor,
                 hidden_dim: int = 256):
        super().__init__()
        self.num_levels = num_levels
        self.params_per_head = initial_head.numel()
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim + feature_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, num_levels * self.params_per_head),
        )
        with torch.no_grad():  # start every class from a well-scaled head; the embedding moves it from there
            self.mlp[-1].weight.mul_(INITIAL_SPREAD)
            self.mlp[-1].bias.copy_(initial_head.repeat(num_levels))

    def forward(self, class_embeddings: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        batch, classes = image_features.shape[0], class_embeddings.shape[0]
        w = nn.functional.normalize(class_embeddings.to(image_features.dtype), dim=-1)
        joint = torch.cat((w.expand(batch, -1, -1), image_features[:, None].expand(-1, classes, -1)), dim=-1)
        return self.mlp(joint).unflatten(-1, (self.num_levels, self.params_per_head))
