"""Per-class numbers of one case: volume, mean intensity and, for tumours, each lesion and a presence score.

A tumour's lesions are the 26-connected components of its mask. A lesion's host is the host organ
(``taxonomy.PARENTS``) with the most voxels overlapping or touching it, among the host masks
computed; a tumour's presence score is the largest probability of the class inside its host
organs and its mask (``evaluation.detection.presence_score``, as ``nnunet-clip evaluate`` reads it).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist

from nnunet_clip.components import bounding_box, grown, label_components
from nnunet_clip.evaluation.detection import presence_score
from nnunet_clip.geometry import Geometry
from nnunet_clip.inference.postprocessing import host_of
from nnunet_clip.taxonomy import PARENTS, TUMORS


def largest_diameter_mm(component: np.ndarray, spacing_zyx: np.ndarray) -> float:
    """Largest distance (mm) between the centres of two voxels of one component."""
    surface = component & ~ndimage.binary_erosion(component)
    points = np.argwhere(surface) * spacing_zyx
    if len(points) > 4:
        points = points[ConvexHull(points, qhull_options="QJ").vertices]
    return float(pdist(points).max()) if len(points) > 1 else 0.0


def tumour_statistics(mask: np.ndarray, geometry: Geometry, hosts: Mapping[str, np.ndarray]) -> dict:
    """Number of lesions, the largest diameter among them and each lesion's volume (ml), largest
    diameter (mm) and host (one of ``hosts``, the host masks computed), largest first."""
    box = bounding_box(mask, margin=1)
    if box is None:
        return {"count": 0, "largest_diameter_mm": None, "lesions": []}
    labels, sizes = label_components(mask, box)
    hosts_in_box = {name: host[box] for name, host in hosts.items()}
    lesions = []
    for i, region in enumerate(ndimage.find_objects(labels), start=1):
        near = grown(region, labels.shape)
        diameter = largest_diameter_mm(labels[region] == i, geometry.spacing_zyx)
        lesions.append({"volume_ml": round(float(sizes[i]) * geometry.voxel_mm3 / 1000, 3),
                        "largest_diameter_mm": round(diameter, 2),
                        "host": host_of(labels[near] == i, {n: h[near] for n, h in hosts_in_box.items()})})
    lesions.sort(key=lambda lesion: (-lesion["volume_ml"], -lesion["largest_diameter_mm"], str(lesion["host"])))
    return {"count": len(lesions), "largest_diameter_mm": max(x["largest_diameter_mm"] for x in lesions),
            "lesions": lesions}


def tumour_presence(name: str, masks: Mapping[str, np.ndarray], probabilities: np.ndarray) -> float:
    """Largest probability (uint8, 255 × p) of tumour ``name`` inside its computed host masks and its
    own mask; over the whole image when no host was computed."""
    hosts = [masks[h] for h in PARENTS[name] if h in masks]
    region = np.logical_or.reduce([masks[name], *hosts]) if hosts else None
    return round(presence_score(probabilities, region) / 255, 3)


def case_statistics(masks: dict[str, np.ndarray], image: np.ndarray, geometry: Geometry,
                    computed: Mapping[str, np.ndarray] | None = None,
                    probabilities: Mapping[str, np.ndarray] | None = None) -> dict:
    """Class -> volume (ml) and mean intensity (HU for CT) of each of ``masks``; tumours and cysts add
    their lesions (``tumour_statistics``) and, where ``probabilities`` (class -> uint8, 255 × p)
    has the class, ``presence_score``. ``computed``: every mask computed, the hosts of the tumours
    among them (default: ``masks``)."""
    computed = masks if computed is None else computed
    probabilities = probabilities or {}
    stats = {}
    for name, mask in masks.items():
        voxels = int(np.count_nonzero(mask))
        entry = {"volume_ml": round(voxels * geometry.voxel_mm3 / 1000, 3),
                 "mean_hu": round(float(image[mask].mean()), 1) if voxels else None}
        if name in TUMORS:
            hosts = {h: computed[h] for h in PARENTS[name] if h in computed}
            entry.update(tumour_statistics(mask, geometry, hosts))
            if name in probabilities:
                entry["presence_score"] = tumour_presence(name, computed, probabilities[name])
        stats[name] = entry
    return stats
