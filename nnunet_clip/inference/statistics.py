"""Per-class numbers of one case: volume, mean intensity and, for tumours, count and largest diameter."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist

from nnunet_clip.components import bounding_box, label_components
from nnunet_clip.geometry import Geometry
from nnunet_clip.taxonomy import TUMORS


def largest_diameter_mm(component: np.ndarray, spacing_zyx: np.ndarray) -> float:
    """Largest distance (mm) between the centres of two voxels of one component."""
    surface = component & ~ndimage.binary_erosion(component)
    points = np.argwhere(surface) * spacing_zyx
    if len(points) > 4:
        points = points[ConvexHull(points, qhull_options="QJ").vertices]
    return float(pdist(points).max()) if len(points) > 1 else 0.0


def tumour_statistics(mask: np.ndarray, geometry: Geometry) -> dict:
    """Number of connected components (lesions) and the largest diameter among them."""
    box = bounding_box(mask)
    if box is None:
        return {"count": 0, "largest_diameter_mm": None}
    labels, sizes = label_components(mask, box)
    diameters = [largest_diameter_mm(labels[s] == i, geometry.spacing_zyx)
                 for i, s in enumerate(ndimage.find_objects(labels), start=1)]
    return {"count": len(sizes) - 1, "largest_diameter_mm": round(max(diameters), 2)}


def case_statistics(masks: dict[str, np.ndarray], image: np.ndarray, geometry: Geometry) -> dict:
    """Class name -> volume (ml), mean intensity (HU for CT) and, for tumours and cysts, lesion count and diameter."""
    stats = {}
    for name, mask in masks.items():
        voxels = int(np.count_nonzero(mask))
        entry = {"volume_ml": round(voxels * geometry.voxel_mm3 / 1000, 3),
                 "mean_hu": round(float(image[mask].mean()), 1) if voxels else None}
        if name in TUMORS:
            entry.update(tumour_statistics(mask, geometry))
        stats[name] = entry
    return stats
