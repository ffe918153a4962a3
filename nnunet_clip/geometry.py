"""Where voxels are in the patient: world (LPS) coordinates of array indices, and the body's midline."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

BODY_HU = -500
"""Voxels above this value (Hounsfield units) are body, below it air."""


@dataclass(frozen=True)
class Geometry:
    """An image's voxel grid: spacing, origin (x, y, z, mm) and direction, as SimpleITK gives them."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)

    @classmethod
    def of(cls, image: sitk.Image) -> "Geometry":
        return cls(tuple(image.GetSpacing()), tuple(image.GetOrigin()), tuple(image.GetDirection()))

    @property
    def voxel_mm3(self) -> float:
        return float(np.prod(self.spacing))

    @property
    def spacing_zyx(self) -> np.ndarray:
        """Spacing in array axis order (z, y, x)."""
        return np.asarray(self.spacing[::-1], dtype=float)

    def world(self, index_zyx: np.ndarray) -> np.ndarray:
        """World (LPS) coordinates (..., 3) of array indices (..., 3) in (z, y, x) order."""
        direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        ijk = np.asarray(index_zyx, dtype=float)[..., ::-1] * np.asarray(self.spacing)
        return np.asarray(self.origin) + ijk @ direction.T


def centroid(mask: np.ndarray) -> np.ndarray:
    """Mean index (z, y, x) of the voxels of a non-empty mask, from its projections (no index arrays)."""
    total = mask.sum()
    return np.array([(mask.sum(axis=tuple(a for a in range(3) if a != axis)) * np.arange(mask.shape[axis])).sum()
                     for axis in range(3)]) / total


def not_ct_warning(image: np.ndarray) -> str | None:
    """Why ``image`` does not look like a CT in Hounsfield units, or None: it has no voxel of air (below
    ``BODY_HU``), as an MR image or a CT stored without its rescale to HU, where neither the body's
    midline nor nnU-Net's CT normalisation holds."""
    if image.size and image.min() > BODY_HU:
        return (f"no voxel below {BODY_HU} HU (no air): not a CT in Hounsfield units? (an MR image, or a CT "
                f"without its rescale to HU); results will be unreliable")
    return None


def body_midline_x(image: np.ndarray, geometry: Geometry) -> float:
    """World x (mm; LPS: larger is the patient's left) of the body's centroid, or of the image centre if no body."""
    body = image > BODY_HU
    index = centroid(body) if body.any() else (np.asarray(image.shape) - 1) / 2
    return float(geometry.world(index)[0])
