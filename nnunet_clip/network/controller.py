"""The text-driven controller: θ_k = MLP(w_k ⊕ f) (paper §3.2).

w_k is the embedding of class k (CLIP text or one-hot), f the globally pooled bottleneck feature
of the case. One MLP produces the head parameters of every deep-supervision level at once.
"""
from __future__ import annotations

import torch
from torch import nn


class HeadParameterController(nn.Module):
    """(K, D) class embeddings and (B, F) image features → head parameters (B, K, levels, P)."""

    def __init__(self, embedding_dim: int, feature_dim: int, num_levels: int, params_per_head: int,
                 hidden_dim: int = 256):
        super().__init__()
        self.num_levels = num_levels
        self.params_per_head = params_per_head
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim + feature_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, num_levels * params_per_head),
        )

    def forward(self, class_embeddings: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        batch, classes = image_features.shape[0], class_embeddings.shape[0]
        w = nn.functional.normalize(class_embeddings.to(image_features.dtype), dim=-1)
        joint = torch.cat((w.expand(batch, -1, -1), image_features[:, None].expand(-1, classes, -1)), dim=-1)
        return self.mlp(joint).unflatten(-1, (self.num_levels, self.params_per_head))
