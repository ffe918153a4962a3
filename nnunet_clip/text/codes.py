"""Class codes built from text embeddings.

Text embeddings of related classes stay alike after centring (all-MiniLM-L6-v2: cosine 0.56 between
"kidney tumor" and "left kidney", 0.72 between "liver tumor" and "liver"), and the controller maps alike
codes to alike heads. ``with_identity`` puts a one-hot identity beside each centred, unit-norm embedding,
at the same norm, which halves every cosine between two classes and keeps the language part
(``nnUNetTrainerCLIPIdentityCodes``; measured in docs/benchmarks.md, "no tumour type is detected").
"""
from __future__ import annotations

import torch


def with_identity(embeddings: torch.Tensor) -> torch.Tensor:
    """(K, D) embeddings → (K, D + K) codes: each embedding centred on the classes' mean and scaled to unit
    norm, then a one-hot row; two classes' codes have half the cosine of their centred embeddings."""
    centred = embeddings.float() - embeddings.float().mean(0)
    language = torch.nn.functional.normalize(centred, dim=1)
    return torch.cat((language, torch.eye(len(embeddings))), dim=1)
