"""Anatomical post-processing of binary class masks (on the input's voxel grid).

In this order (docs/prediction.md lists the rule of every class):

1. Sides: the right and left masks of a sided organ (kidney, adrenal gland, lung, head of femur)
   are united and split again by the converters' rule (``nnunet_clip.sides``): each connected
   component goes to the side of the body's midline its centroid lies on, in world coordinates, and
   a component with a fifth or more of its voxels on each side is cut at the midline. A right
   kidney predicted on the patient's left becomes left kidney.
2. Single organs (every trained organ but ``MULTI_PART``): the largest connected component only.
3. Tumours and cysts: only components that touch or lie inside a host organ (``taxonomy.PARENTS``)
   stay. Without a host mask (a host that was not computed) the rule is skipped.
4. Tiny islands: components under ``MIN_ISLAND_MM3`` are removed from every other class.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from nnunet_clip.components import CONNECTIVITY, bounding_box, keep_labels, label_components
from nnunet_clip.geometry import Geometry
from nnunet_clip.sides import patient_left
from nnunet_clip.taxonomy import CLASS_NAMES, PARENTS, SIDED_PAIRS, TUMORS

MULTI_PART: tuple[str, ...] = ("portal vein and splenic vein", "hepatic vessel", "colon", "intestine")
"""Organs whose segmentations are often in pieces (vessel trees, bowel loops): islands removal only."""

SINGLE_ORGANS: tuple[str, ...] = tuple(n for n in CLASS_NAMES if n not in TUMORS and n not in MULTI_PART)

MIN_ISLAND_MM3: dict[str, float] = {**{n: 10.0 for n in TUMORS}, **{n: 100.0 for n in MULTI_PART}}
"""Smallest component kept (mm³) per class; classes not named here (new, zero-shot names) use the default."""
DEFAULT_MIN_ISLAND_MM3 = 100.0


def largest_component(mask: np.ndarray) -> np.ndarray:
    box = bounding_box(mask)
    if box is None:
        return mask
    labels, sizes = label_components(mask, box)
    return keep_labels(mask, box, labels, np.arange(len(sizes)) == np.argmax(sizes[1:]) + 1)


def remove_islands(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    box = bounding_box(mask)
    if box is None:
        return mask
    labels, sizes = label_components(mask, box)
    return keep_labels(mask, box, labels, sizes >= min_voxels)


def keep_touching(mask: np.ndarray, host: np.ndarray) -> np.ndarray:
    """Components of ``mask`` that overlap ``host`` or touch it (26-neighbourhood)."""
    box = bounding_box(mask, margin=1)
    if box is None:
        return mask
    labels, sizes = label_components(mask, box)
    touching = np.zeros(len(sizes), dtype=bool)
    touching[np.unique(labels[ndimage.binary_dilation(host[box], CONNECTIVITY)])] = True
    return keep_labels(mask, box, labels, touching)


def correct_sides(right: np.ndarray, left: np.ndarray, geometry: Geometry,
                  midline_x: float) -> tuple[np.ndarray, np.ndarray]:
    """The union of both masks split into the patient's right and left by ``sides.patient_left``."""
    union = right | left
    on_left = patient_left(union, geometry, midline_x)
    return union & ~on_left, on_left


def postprocess(masks: dict[str, np.ndarray], geometry: Geometry, midline_x: float) -> dict[str, np.ndarray]:
    """The post-processed masks (same keys); see the module docstring for the rules."""
    out = dict(masks)
    for right, left in SIDED_PAIRS:
        if right in out and left in out:
            out[right], out[left] = correct_sides(out[right], out[left], geometry, midline_x)
    for name in out:
        if name in SINGLE_ORGANS:
            out[name] = largest_component(out[name])
    for name, hosts in PARENTS.items():
        present = [out[h] for h in hosts if h in out]
        if name in TUMORS and name in out and present:
            out[name] = keep_touching(out[name], np.logical_or.reduce(present))
    for name in out:
        if name not in SINGLE_ORGANS:
            out[name] = remove_islands(out[name], MIN_ISLAND_MM3.get(name, DEFAULT_MIN_ISLAND_MM3) / geometry.voxel_mm3)
    return out
