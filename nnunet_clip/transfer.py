"""Starting a training from a universal checkpoint: nnU-Net's ``-pretrained_weights``.

nnU-Net's loader (``nnunetv2.run.load_pretrained_weights``) copies every weight of the checkpoint
but the segmentation layers, and stops with an assertion if a weight is missing or has another
shape. The Universal Model keeps its whole class-dependent state in the segmentation layers
(``network.universal_unet.ClassTable``), so any class set trains on from a universal checkpoint:
backbone, projections and controller carry over, and every class, old or new, gets its head from
its text embedding. Before nnU-Net's loader runs, ``check_pretrained`` turns what would stop it
into one line, ``class_transfer`` says which classes the checkpoint was trained on, and
``carry_head_offsets`` gives those classes their own head parameters back (matched by name).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from nnunet_clip.errors import InputError
from nnunet_clip.network.universal_unet import CLASS_TABLE
from nnunet_clip.taxonomy import canonical_name
from nnunet_clip.vocabulary import ANNOTATED_KEY

SKIPPED = ".seg_layers."
"""What nnU-Net's loader leaves out of the transfer (by key)."""
REUSE_PLANS = ("nnUNetv2_move_plans_between_datasets -s SOURCE -t TARGET -sp PLANS -tp PLANS_FROM_SOURCE, "
               "nnUNetv2_preprocess -d TARGET -plans_name PLANS_FROM_SOURCE, then train with -p PLANS_FROM_SOURCE "
               "(docs/training.md)")


def pretrained_weights_argument(argv: list[str] | None = None) -> str | None:
    """The file given to ``nnUNetv2_train -pretrained_weights``, if this process was started so."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv[:-1]):
        if arg == "-pretrained_weights":
            return argv[i + 1]
    return None


def load_checkpoint(path: str | Path) -> dict:
    """An nnU-Net checkpoint (``network_weights``, and ``init_args`` with the dataset.json it trained on)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as e:
        raise InputError(f"{path}: cannot be read as a checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise InputError(f"{path}: not an nnU-Net checkpoint (no 'network_weights')")
    return checkpoint


def check_pretrained(weights: dict, network: torch.nn.Module, path: str | Path) -> None:
    """InputError naming what nnU-Net's loader would stop at: a weight the checkpoint lacks or has in
    another shape (another backbone or other plans), or another number of input channels."""
    if f"{CLASS_TABLE}.class_embeddings" not in weights:
        raise InputError(f"{path}: not a checkpoint of an nnunet-clip universal model (or one of an older "
                         "nnunet-clip)")
    for key, value in network.state_dict().items():
        if SKIPPED in key or not isinstance(value, torch.Tensor):
            continue
        if key not in weights:
            raise InputError(f"{path}: has no weight {key}: another network architecture; reuse its plans: "
                             f"{REUSE_PLANS}")
        if weights[key].shape != value.shape:
            shapes = f"{path}: {key} has shape {tuple(weights[key].shape)}, this network {tuple(value.shape)}"
            if key == "embedding_mean":
                raise InputError(f"{shapes}: class embeddings of another width; embed the dataset with the "
                                 "checkpoint's text encoder (its plans' universal_model.text_encoder)")
            inputs = key == first_conv(network) and weights[key].shape[1] != value.shape[1]
            what = "another number of input channels" if inputs else "other plans (features, stages or kernels)"
            raise InputError(f"{shapes}: {what}; reuse its plans: {REUSE_PLANS}")


def first_conv(network: torch.nn.Module) -> str | None:
    """Key of the first convolution's weight (it reads the input channels)."""
    return next((k for k, v in network.state_dict().items() if k.endswith("weight") and v.ndim >= 4), None)


def class_transfer(checkpoint: dict, class_names: list[str]) -> tuple[list[str], list[str]]:
    """(classes the checkpoint was trained on, classes new to it), in ``class_names``' order. Trained on: in
    its class table and annotated by some case of its dataset.json (a converted dataset lists every class
    of the taxonomy, annotated or not)."""
    known = {canonical_name(c) for c in checkpoint["network_weights"][f"{CLASS_TABLE}._extra_state"]["class_names"]}
    annotated = checkpoint.get("init_args", {}).get("dataset_json", {}).get(ANNOTATED_KEY)
    if annotated:
        known &= {canonical_name(c) for names in annotated.values() for c in names}
    return ([c for c in class_names if canonical_name(c) in known],
            [c for c in class_names if canonical_name(c) not in known])


def changed_embeddings(weights: dict, class_names: list[str], embeddings: torch.Tensor) -> list[str]:
    """Classes of the checkpoint's table whose embedding here (``embeddings``, (K, D) in ``class_names``' order)
    is not the one it trained with: another text encoder, template or weights. Their generated heads are
    not the trained ones."""
    row = {name: i for i, name in enumerate(weights[f"{CLASS_TABLE}._extra_state"]["class_names"])}
    stored = weights[f"{CLASS_TABLE}.class_embeddings"].float().cpu()
    return [name for i, name in enumerate(class_names) if name in row and
            not torch.allclose(embeddings[i].float().cpu(), stored[row[name]], rtol=1e-4, atol=1e-6)]


def carry_head_offsets(weights: dict, network: torch.nn.Module) -> list[str]:
    """Copy the checkpoint's per-class head offsets (``ClassTable.head_offsets``) into ``network`` for
    the classes both know, matched by name; the others keep theirs (zero). Returns the classes copied."""
    key = f"{CLASS_TABLE}.head_offsets"
    offsets = network.classes.head_offsets
    if offsets is None or key not in weights or weights[key].shape[1:] != offsets.shape[1:]:
        return []
    row = {name: i for i, name in enumerate(weights[f"{CLASS_TABLE}._extra_state"]["class_names"])}
    carried = [(i, row[name]) for i, name in enumerate(network.class_names) if name in row]
    with torch.no_grad():
        for mine, theirs in carried:
            offsets[mine] = weights[key][theirs].to(offsets.device, offsets.dtype)
    return [network.class_names[i] for i, _ in carried]
