"""PNG of the cosine similarity between class embeddings (the paper's Figure 1)."""
from __future__ import annotations

import os
from pathlib import Path

import torch


def save_similarity_png(embeddings: torch.Tensor, class_names: list[str], path: str | os.PathLike,
                        title: str = "") -> None:
    """Heat map of the (K, K) cosine similarity of ``embeddings``; written via a temporary file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    similarity = (unit @ unit.T).numpy()
    size = 3 + 0.28 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(similarity, cmap="viridis")
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    ax.set_title(title or "cosine similarity of class embeddings", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
