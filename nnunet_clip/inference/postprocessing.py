"""Anatomical post-processing of binary class masks (on the input's voxel grid).

In this order (docs/prediction.md lists the rule of every class):

1. Sides: the right and left masks of a sided pair (kidney, adrenal gland, lung, head of femur, and
   the pairs a dataset adds, ``Vocabulary.sided_pairs``) are united and split again by the
   converters' rule (``nnunet_clip.sides``): each connected component goes to the side of the body's
   midline its centroid lies on, in world coordinates, and a component with a fifth or more of its
   voxels on each side is cut at the midline. A right kidney predicted on the patient's left becomes
   left kidney.
2. Single organs (every universal organ but ``MULTI_PART``): the largest connected component only.
3. Tiny islands: components under ``min_island_mm3`` are removed from every class not reduced to one
   component.
4. Classes inside a host (``Vocabulary.parents``: the tumours and cysts, the hepatic vessel inside
   the liver, and any class a dataset adds with parents): a component that neither overlaps nor
   touches a host is removed; each other one is added to the host it overlaps or touches most, so
   organ ∪ tumour is the organ, as in the training labels (a liver region includes its tumours; an
   exophytic kidney tumour stays part of its kidney). Without a host mask (a host that was not
   computed) the rule is skipped.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from nnunet_clip.components import CONNECTIVITY, bounding_box, grown, keep_labels, label_components
from nnunet_clip.geometry import Geometry
from nnunet_clip.sides import patient_left
from nnunet_clip.taxonomy import CLASS_NAMES, TUMORS, is_lesion
from nnunet_clip.vocabulary import DEFAULT, Vocabulary

MULTI_PART: tuple[str, ...] = ("portal vein and splenic vein", "hepatic vessel", "colon", "intestine")
"""Organs whose segmentations are often in pieces (vessel trees, bowel loops): islands removal only."""

SINGLE_ORGANS: tuple[str, ...] = tuple(n for n in CLASS_NAMES if n not in TUMORS and n not in MULTI_PART)

LESION_MIN_ISLAND_MM3 = 10.0
DEFAULT_MIN_ISLAND_MM3 = 100.0


def min_island_mm3(name: str) -> float:
    """Smallest component kept (mm³): 10 for a lesion, 100 for any other class."""
    return LESION_MIN_ISLAND_MM3 if is_lesion(name) else DEFAULT_MIN_ISLAND_MM3


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component; all of them if several tie (which one came first would
    depend on how the scan is stored)."""
    box = bounding_box(mask)
    if box is None:
        return mask
    labels, sizes = label_components(mask, box)
    return keep_labels(mask, box, labels, sizes == sizes[1:].max())


def remove_islands(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    box = bounding_box(mask)
    if box is None:
        return mask
    labels, sizes = label_components(mask, box)
    return keep_labels(mask, box, labels, sizes >= min_voxels)


def host_of(component: np.ndarray, hosts: dict[str, np.ndarray]) -> str | None:
    """The host whose mask has the most voxels in or next to ``component`` (26-neighbourhood); None if none does."""
    near = ndimage.binary_dilation(component, CONNECTIVITY)
    touching = {name: int(np.count_nonzero(mask & near)) for name, mask in hosts.items()}
    best = max(touching, key=touching.get, default=None)
    return best if best is not None and touching[best] else None


def place_in_hosts(mask: np.ndarray, hosts: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``mask`` without the components that neither overlap nor touch a host, and ``hosts`` with each
    remaining component added to ``host_of`` it (a host that gains voxels is copied first: the caller's
    arrays are left as they were)."""
    box = bounding_box(mask, margin=1)
    if box is None:
        return mask, hosts
    out = dict(hosts)
    labels, sizes = label_components(mask, box)
    kept = np.zeros(len(sizes), dtype=bool)
    for i, region in enumerate(ndimage.find_objects(labels), start=1):
        near = grown(region, labels.shape)
        component = labels[near] == i
        host = host_of(component, {name: h[box][near] for name, h in out.items()})
        if host is not None:
            kept[i] = True
            if out[host] is hosts[host]:
                out[host] = out[host].copy()
            out[host][box][near] |= component
    return keep_labels(mask, box, labels, kept), out


def correct_sides(right: np.ndarray, left: np.ndarray, geometry: Geometry,
                  midline_x: float) -> tuple[np.ndarray, np.ndarray]:
    """The union of both masks split into the patient's right and left by ``sides.patient_left``."""
    union = right | left
    on_left = patient_left(union, geometry, midline_x)
    return union & ~on_left, on_left


def postprocess(masks: dict[str, np.ndarray], geometry: Geometry, midline_x: float,
                vocabulary: Vocabulary = DEFAULT) -> dict[str, np.ndarray]:
    """The post-processed masks (same keys); see the module docstring for the rules."""
    out = dict(masks)
    for right, left in vocabulary.sided_pairs():
        if right in out and left in out:
            out[right], out[left] = correct_sides(out[right], out[left], geometry, midline_x)
    for name in out:
        if name in SINGLE_ORGANS:
            out[name] = largest_component(out[name])
    for name in out:
        if name not in SINGLE_ORGANS:
            out[name] = remove_islands(out[name], min_island_mm3(name) / geometry.voxel_mm3)
    for name in out:
        hosts = [h for h in vocabulary.parents.get(name, ()) if h in out]
        if hosts:
            out[name], placed = place_in_hosts(out[name], {h: out[h] for h in hosts})
            out.update(placed)
    return out
