"""Predicted probabilities beside the predicted label maps, for the tumours' presence scores.

Two layouts are read, whichever a case has:

- ``nnunet-clip predict --probabilities``: ``PRED_DIR/<case>/probabilities/<class>.nii.gz``, one
  uint8 image per class holding round(255 × p);
- ``nnUNetv2_predict --save_probabilities``: ``PRED_DIR/<case>.npz``, key ``probabilities``, one
  channel per class of the prediction's labels in their order (nnU-Net's regions), float.

The whole npz is loaded once per case (nnU-Net stores all classes in one array). Probabilities come
back in LPS orientation, as ``case_metrics.read_label_map`` gives the label maps: an image by its
direction; an npz as nnU-Net's reader laid it out (its ``<case>.pkl`` properties say how; without
them, as the predicted label map is stored).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from nnunet_clip.errors import InputError
from nnunet_clip.inference.outputs import file_name
from nnunet_clip.orientation import case_orientation, reoriented

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


def _npz_orientation(path: Path, stored: str) -> str:
    """The layout of an nnU-Net npz: its reader's orientation (from the properties nnU-Net saves beside it)."""
    properties = path.with_suffix(".pkl")
    if properties.is_file():
        from batchgenerators.utilities.file_and_folder_operations import load_pickle

        return case_orientation(load_pickle(str(properties))) or stored
    return stored


def read_probabilities(path: Path, names: Sequence[str], channels: Sequence[str],
                       shape: tuple[int, ...], stored: str = "LPS") -> dict[str, np.ndarray]:
    """Class -> float32 probabilities (z, y, x) in [0, 1], in LPS orientation, for the classes of ``names``
    that ``path`` (from ``find_probabilities``) holds; ``channels`` names the npz's channels, ``stored`` is
    the orientation the predicted label map is stored in."""
    if path.suffix == NNUNET_PROBABILITIES:
        layout = _npz_orientation(path, stored)
        try:
            with np.load(path) as data:
                wanted = [n for n in names if n in channels]
                stacked = data["probabilities"] if wanted else None
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{path}: cannot be read as nnU-Net probabilities ({e})") from e
        if stacked is not None and stacked.shape[0] != len(channels):
            raise InputError(f"{path}: {stacked.shape[0]} probability channels, the prediction's labels name "
                             f"{len(channels)} classes")
        return {n: _check_shape(reoriented(stacked[channels.index(n)].astype(np.float32), layout, "LPS"), shape, path)
                for n in wanted}
    out = {}
    for name in names:
        file = path / file_name(name)
        if file.is_file():
            try:
                array = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(file)), "LPS"))
            except RuntimeError as e:
                raise InputError(f"{file}: cannot be read as an image") from e
            scale = 255.0 if array.dtype == np.uint8 else 1.0
            out[name] = _check_shape(array.astype(np.float32) / scale, shape, file)
    return out
