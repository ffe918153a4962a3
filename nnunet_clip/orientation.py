"""Which way a scan's array axes point, and a scan moved into a model's orientation and back.

An orientation is three letters in the convention of SimpleITK's ``DICOMOrient``: the patient
direction towards which each image index axis (i, j, k; SimpleITK's x, y, z) increases. "LPS"
is the identity direction; "RAS" is nibabel's canonical orientation, the one nnU-Net's
``NibabelIOWithReorient`` reads every image in.

A model sees arrays in the one orientation its training cases had (``nnUNetTrainerCLIP`` records
it). ``ModelView`` gives a scan to the network in that orientation and brings every result back
onto the scan's own grid: by axis permutations and flips (exact, no interpolation) when the scan's
direction is a signed permutation, by resampling when it is oblique.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import SimpleITK as sitk

from nnunet_clip.errors import InputError

AXIS_ALIGNED_TOLERANCE = 1e-4
"""Largest off-axis direction cosine of an axis-aligned scan (0.006°; NIfTI stores directions as
float32 quaternions, so exact permutations come back with errors near 1e-7)."""

_AXIS_LETTERS = ("LR", "PA", "SI")
"""Per LPS world axis x, y, z: the letter of its positive and of its negative direction."""


def _axes_and_signs(direction) -> tuple[np.ndarray, np.ndarray]:
    """Per index axis: the world axis (0..2) it is closest to, and the sign along it."""
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    axes = np.abs(matrix).argmax(axis=0)
    if len(set(axes.tolist())) != 3:
        raise InputError(f"direction {tuple(np.round(matrix.ravel(), 4))} has two axes along one world axis")
    return axes, np.sign(matrix[axes, [0, 1, 2]])


def orientation_code(direction) -> str:
    """The orientation of the nearest axis-aligned direction, e.g. 'LPS' for the identity."""
    axes, signs = _axes_and_signs(direction)
    return "".join(_AXIS_LETTERS[a][0 if s > 0 else 1] for a, s in zip(axes, signs))


def direction_of(code: str) -> np.ndarray:
    """The axis-aligned direction matrix (3, 3) of an orientation code."""
    code = code.upper()
    matrix = np.zeros((3, 3))
    for index_axis, letter in enumerate(code):
        world = next((a for a, pair in enumerate(_AXIS_LETTERS) if letter in pair), None)
        if world is None or len(code) != 3:
            raise ValueError(f"{code!r} is not an orientation (three of L/R, P/A, S/I)")
        matrix[world, index_axis] = 1.0 if letter == _AXIS_LETTERS[world][0] else -1.0
    if not np.allclose(np.abs(matrix).sum(0), 1) or not np.allclose(np.abs(matrix).sum(1), 1):
        raise ValueError(f"{code!r} is not an orientation (each of L/R, P/A, S/I once)")
    return matrix


def is_axis_aligned(direction) -> bool:
    """Whether the direction is a signed permutation of the world axes (not oblique)."""
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    off_axis = np.abs(matrix) * (np.abs(matrix) < 0.5)
    return bool(off_axis.max() <= AXIS_ALIGNED_TOLERANCE)


def case_orientation(properties: dict) -> str | None:
    """The orientation of a case as an nnU-Net reader gave it to preprocessing (its properties):
    SimpleITKIO keeps the stored one, NibabelIOWithReorient reorients to RAS; None for other readers."""
    if "sitk_stuff" in properties:
        return orientation_code(properties["sitk_stuff"]["direction"])
    if "nibabel_stuff" in properties:
        import nibabel

        return "".join(nibabel.aff2axcodes(properties["nibabel_stuff"]["reoriented_affine"]))
    return None


@dataclass
class ModelView:
    """A scan as the model sees it (``image``), and the way back onto the scan's grid (``to_input``)."""

    image: sitk.Image
    to_input: Callable[[np.ndarray], np.ndarray]
    """(z, y, x) array on ``image``'s grid -> the same on the scan's grid."""
    resampled: bool = False

    @classmethod
    def of(cls, scan: sitk.Image, orientation: str) -> "ModelView":
        """The view of ``scan`` in ``orientation``: permuted and flipped, or resampled if oblique."""
        if is_axis_aligned(scan.GetDirection()):
            return cls(sitk.DICOMOrient(scan, orientation), _permutation_back(scan.GetDirection(), orientation))
        grid = axis_aligned_grid(scan, orientation)
        outside = float(sitk.GetArrayViewFromImage(scan).min())
        view = sitk.Resample(scan, grid, sitk.Transform(), sitk.sitkLinear, outside, sitk.sitkFloat32)
        return cls(view, lambda array: _resampled_back(array, grid, scan), resampled=True)


def reoriented(array: np.ndarray, orientation: str, to: str) -> np.ndarray:
    """A (z, y, x) array laid out in ``orientation``, laid out in ``to`` (transposes and flips)."""
    return _permutation_back(direction_of(to).ravel(), orientation)(array)


def _permutation_back(direction, orientation: str) -> Callable[[np.ndarray], np.ndarray]:
    """array on the ``orientation`` grid -> on the grid of ``direction``: transposes and flips, as views."""
    scan_axes, scan_signs = _axes_and_signs(direction)
    model_axes, model_signs = _axes_and_signs(direction_of(orientation).ravel())
    source = [int(np.flatnonzero(model_axes == w)[0]) for w in scan_axes]  # model index axis of each scan axis
    flips = tuple(2 - source[a] for a in range(3) if scan_signs[a] != model_signs[source[a]])
    order = [2 - source[2 - p] for p in range(3)]  # numpy axes are the index axes reversed

    def back(array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.flip(array, flips).transpose(order))
    return back


def axis_aligned_grid(scan: sitk.Image, orientation: str) -> sitk.Image:
    """An empty image in ``orientation`` covering ``scan``'s voxel centres, at its spacing per nearest axis."""
    direction = direction_of(orientation)
    scan_axes, _ = _axes_and_signs(scan.GetDirection())
    model_axes, _ = _axes_and_signs(direction.ravel())
    spacing = [scan.GetSpacing()[int(np.flatnonzero(scan_axes == w)[0])] for w in model_axes]
    size = np.asarray(scan.GetSize()) - 1
    corners = np.array([scan.TransformContinuousIndexToPhysicalPoint((size * c).tolist())
                        for c in np.ndindex(2, 2, 2)])
    local = corners @ direction  # coordinates along the model's index axes
    low, high = local.min(0), local.max(0)
    grid = sitk.Image([int(n) for n in np.ceil((high - low) / spacing - 1e-6) + 1], sitk.sitkUInt8)
    grid.SetDirection(direction.ravel().tolist())
    grid.SetSpacing(spacing)
    grid.SetOrigin((direction @ low).tolist())
    return grid


def _resampled_back(array: np.ndarray, grid: sitk.Image, scan: sitk.Image) -> np.ndarray:
    image = sitk.GetImageFromArray(np.asarray(array, dtype=np.float32))
    image.CopyInformation(grid)
    back = sitk.Resample(image, scan, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(back).astype(array.dtype, copy=False)
