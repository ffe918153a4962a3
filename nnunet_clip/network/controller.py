"""The text-driven controller: θ_k = MLP(w_k ⊕ f) (paper §3.2).

w_k is the embedding of class k (CLIP text or one-hot), f the globally pooled bottleneck feature
of the case. One MLP produces the head parameters of every deep-supervision level at once.

Initialisation, so that training starts as from a stock convolution head with its own weights
per class:

- w_k enters standardised: the network centres it (``UniversalUNet``) and the controller scales
  it to norm √D (unit root-mean-square entries), as large as the image features. CLIP embeddings of
  one prompt template agree in most of their length (pairwise cosine 0.8–0.99); unscaled, every
  class would start with practically the same head.
- The output layer's bias is one He-initialised head (``DynamicHeads.initial_parameters``); its
  default-initialised weights put each class's head about 40 % of that head's norm away from it.

The output layer's weights act through a factor 1/hidden (``OutputLayer``). An Adam step moves
every weight by about the learning rate, so without the factor the output layer alone would move a
generated head parameter, a sum over ``hidden`` weights, by up to ``hidden`` times that and push
the heads' hidden units out of the features' range within tens of steps; with it a head parameter
moves by about one weight's step (docs/demo_experiments.md).
"""
from __future__ import annotations

import torch
from torch import nn


INITIAL_LOGIT = -2.0
"""Initial logit bias of every head: sigmoid 0.12, a prior for structures that fill a small part of a patch."""


class OutputLayer(nn.Linear):
    """A linear layer whose weights act through a factor 1/in_features (stored larger by as much):
    same initial outputs as ``nn.Linear``, in_features times smaller output steps under Adam."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features)
        self.scale = 1.0 / in_features
        with torch.no_grad():
            self.weight.div_(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.scale, self.bias)


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
            OutputLayer(hidden_dim, num_levels * self.params_per_head),
        )
        with torch.no_grad():  # classes start around one well-scaled head; their embeddings set them apart
            self.mlp[-1].bias.copy_(initial_head.repeat(num_levels))

    def forward(self, class_embeddings: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        batch, classes = image_features.shape[0], class_embeddings.shape[0]
        w = nn.functional.normalize(class_embeddings.to(image_features.dtype), dim=-1) * class_embeddings.shape[1] ** 0.5
        joint = torch.cat((w.expand(batch, -1, -1), image_features[:, None].expand(-1, classes, -1)), dim=-1)
        return self.mlp(joint).unflatten(-1, (self.num_levels, self.params_per_head))
