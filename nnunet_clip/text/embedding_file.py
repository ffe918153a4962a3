"""The stored text embeddings of a dataset's class names.

``nnunet-clip embed`` writes ``text_embeddings.pt`` beside the dataset.json of the raw dataset and
of the preprocessed dataset, so that training needs neither the raw data nor the text encoder.
The file holds the class names, the (K, D) embeddings and the encoder that made them.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from nnunet_clip.atomic import atomic_path
from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import canonical_name
from nnunet_clip.text.clip_encoder import TextEncoderSpec

EMBEDDING_FILE = "text_embeddings.pt"


@dataclass
class TextEmbeddings:
    """Class names, their embeddings (K, D) and the text encoder that produced them."""

    class_names: list[str]
    embeddings: torch.Tensor
    encoder: TextEncoderSpec

    def for_classes(self, names: list[str], source: str | os.PathLike = EMBEDDING_FILE) -> torch.Tensor:
        """Rows of ``embeddings`` in the order of ``names`` (aliases accepted)."""
        index = {canonical_name(n): i for i, n in enumerate(self.class_names)}
        missing = [n for n in names if canonical_name(n) not in index]
        if missing:
            raise InputError(f"{source}: no embedding for {', '.join(missing)}; run `nnunet-clip embed` again")
        return self.embeddings[[index[canonical_name(n)] for n in names]]

    def save(self, path: str | os.PathLike) -> None:
        """Write to ``path`` via a temporary file, so a reader never sees half a file."""
        with atomic_path(Path(path)) as tmp:
            torch.save({"class_names": self.class_names, "embeddings": self.embeddings.float().cpu(),
                        "encoder": asdict(self.encoder)}, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TextEmbeddings":
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            return cls(list(d["class_names"]), d["embeddings"], TextEncoderSpec(**d["encoder"]))
        except FileNotFoundError:
            raise
        except Exception as e:
            raise InputError(f"{path}: not a text embedding file ({type(e).__name__}: {e})") from e
