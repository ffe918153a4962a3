"""Which classes to predict: names as the user types them, resolved against a trained model.

A name the model was trained on (any case and spacing, aliases accepted) selects its head. Any other
name is a zero-shot prompt: it is encoded by the text encoder recorded in the model's plans, if
that encoder's weights can be loaded, with a warning that its quality is unmeasured.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import canonical_name
from nnunet_clip.text.clip_encoder import RANDOM_WEIGHTS, TextEncoderSpec, encode_prompts
from nnunet_clip.vocabulary import DEFAULT, Vocabulary


@dataclass
class ClassSelection:
    """The classes to write, the helper classes post-processing reads, and the embeddings of new names."""

    model_classes: list[str]
    """Trained classes to compute, in the model's output order: requested ones and helpers."""
    requested: list[str]
    """The classes to write: trained ones (canonical names), then new ones (lower case)."""
    zero_shot: list[str]
    """New names, computed after ``model_classes`` from ``zero_shot_embeddings``."""
    zero_shot_embeddings: torch.Tensor | None = None
    vocabulary: Vocabulary = DEFAULT
    """The model's dataset's classes: parents and sides for post-processing and the label map."""

    @property
    def computed(self) -> list[str]:
        """Every class in the order of the network's outputs: ``model_classes`` then ``zero_shot``."""
        return self.model_classes + self.zero_shot


def postprocessing_helpers(names: list[str], vocabulary: Vocabulary = DEFAULT) -> set[str]:
    """Classes post-processing of ``names`` reads: the hosts of structures inside organs, the other side
    of sided ones."""
    helpers = {parent for n in names for parent in vocabulary.parents.get(n, ())}
    helpers |= {other for pair in vocabulary.sided_pairs() for n in names if n in pair for other in pair}
    return helpers - set(names)


def select_classes(requested: list[str] | None, model_classes: list[str], text_encoder: dict | None,
                   with_helpers: bool, vocabulary: Vocabulary = DEFAULT) -> ClassSelection:
    """Resolve requested names (None: every trained class) against the model's classes (of ``vocabulary``)."""
    if not requested:
        return ClassSelection(list(model_classes), list(model_classes), [], vocabulary=vocabulary)
    names = list(dict.fromkeys(canonical_name(n) for n in requested))
    known = [n for n in names if n in model_classes]
    new = [n for n in names if n not in model_classes]
    wanted = set(known) | (postprocessing_helpers(known, vocabulary) & set(model_classes) if with_helpers else set())
    selection = ClassSelection([c for c in model_classes if c in wanted], known + new, new, vocabulary=vocabulary)
    if new:
        selection.zero_shot_embeddings = encode_new_classes(new, model_classes, text_encoder)
    return selection


def encode_new_classes(names: list[str], model_classes: list[str], text_encoder: dict | None) -> torch.Tensor:
    """(N, D) embeddings of names the model was not trained on, by the model's own text encoder."""
    known = f"the model knows: {', '.join(model_classes)}"
    if text_encoder is None:
        raise InputError(f"--classes {', '.join(names)}: not trained, and the model's class codes are not "
                         f"text embeddings alone (one-hot, or text beside a one-hot identity), so new names "
                         f"cannot be encoded; {known}")
    spec = TextEncoderSpec(**text_encoder)
    if spec.pretrained == RANDOM_WEIGHTS:
        raise InputError(f"--classes {', '.join(names)}: not trained, and the model's text encoder had random "
                         f"weights (--pretrained none), which cannot be recreated to encode new names; {known}")
    try:
        embeddings = encode_prompts(spec, names)
    except InputError as e:
        raise InputError(f"--classes {', '.join(names)}: not trained, and {e}; {known}") from e
    print(f"warning: {', '.join(names)}: not trained; predicted zero-shot from the text prompt "
          f"'{spec.template.format(names[0])}'. The quality of zero-shot masks is unmeasured.", file=sys.stderr)
    return embeddings
