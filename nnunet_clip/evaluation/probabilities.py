"""Predicted probabilities beside the predicted label maps, for the tumours' presence scores.

Two layouts are read, whichever a case has:

- ``nnunet-clip predict --probabilities``: ``PRED_DIR/<case>/probabilities/<class>.nii.gz``, one
  uint8 image per class holding round(255 × p);
- ``nnUNetv2_predict --save_probabilities``: ``PRED_DIR/<case>.npz``, key ``probabilities``, one
  channel per class of the prediction's labels in their order (nnU-Net's regions), float.

The whole npz is loaded once per case (nnU-Net stores all classes in one array).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from nnunet_clip.errors import InputError
from nnunet_clip.inference.outputs import file_name

NNUNET_PROBABILITIES = ".npz"
CLASS_PROBABILITIES = "probabilities"


def find_probabilities(pred_dir: Path, case: str) -> Path | None:
    """The case's folder of per-class probabilities, else its nnU-Net npz, else None."""
    folder = pred_dir / case / CLASS_PROBABILITIES
    if folder.is_dir():
        return folder
    npz = pred_dir / f"{case}{NNUNET_PROBABILITIES}"
    return npz if npz.is_file() else None


def _check_shape(array: np.ndarray, shape: tuple[int, ...], source: Path) -> np.ndarray:
    if array.shape != shape:
        raise InputError(f"{source}: probabilities of shape {array.shape}, the label maps have {shape}")
    return array


def read_probabilities(path: Path, names: Sequence[str], channels: Sequence[str],
                       shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Class -> float32 probabilities (z, y, x) in [0, 1], for the classes of ``names`` that ``path``
    (from ``find_probabilities``) holds; ``channels`` names the npz's channels."""
    if path.suffix == NNUNET_PROBABILITIES:
        try:
            with np.load(path) as data:
                wanted = [n for n in names if n in channels]
                stacked = data["probabilities"] if wanted else None
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{path}: cannot be read as nnU-Net probabilities ({e})") from e
        if stacked is not None and stacked.shape[0] != len(channels):
            raise InputError(f"{path}: {stacked.shape[0]} probability channels, the prediction's labels name "
                             f"{len(channels)} classes")
        return {n: _check_shape(stacked[channels.index(n)].astype(np.float32), shape, path) for n in wanted}
    out = {}
    for name in names:
        file = path / file_name(name)
        if file.is_file():
            try:
                array = sitk.GetArrayFromImage(sitk.ReadImage(str(file)))
            except RuntimeError as e:
                raise InputError(f"{file}: cannot be read as an image") from e
            scale = 255.0 if array.dtype == np.uint8 else 1.0
            out[name] = _check_shape(array.astype(np.float32) / scale, shape, file)
    return out
