"""Synthetic abdominal CT phantoms with all 32 universal classes, anatomically arranged.

The anatomy is drawn in a body frame in millimetres: X from the patient's right to left, Y from
anterior to posterior, Z from the femoral heads up to the lower thorax. Positions are fractions
of the body's half-width, half-depth and height (``u, v, t``); sizes are millimetres scaled with
the body. Organs are deformed ellipsoids and tubes (capsule chains); where two overlap, the later
one in ``ORGANS`` wins. Tumours, cysts and hepatic vessels lie inside their host organ. Hounsfield
values are those of a portal-venous CT, with smooth texture, partial-volume blur and noise.

Small structures (adrenal glands, celiac trunk, vessels) are drawn thicker than in real patients
so that they stay resolvable at the coarse spacing the CPU demo uses. The image is stored in LPS
(array x toward the patient's left, y posterior, z superior), as ITK's physical frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from nnunet_clip.taxonomy import CLASS_NAMES

DEFAULT_SPACING = (6.0, 6.0, 9.0)
"""Mean voxel spacing (x, y, z) in mm; each case varies it by up to about ±10 %."""

BODY_SIZE = (330.0, 230.0, 420.0)
"""Mean body width, depth and field-of-view height in mm."""

FOV_MARGIN = (1.1, 1.22, 1.0)
"""Field of view / body size per axis."""

# ---------------------------------------------------------------- the anatomy

ELLIPSOID, TUBE = "ellipsoid", "tube"

ORGANS: tuple[tuple[str, str, tuple, float | tuple], ...] = (
    # name, primitive, centre (u, v, t) or tube points, radii (mm) or tube radius (mm)
    ("psoas", TUBE, ((-0.2, 0.55, 0.55), (-0.3, 0.35, 0.12)), 22.0),
    ("psoas", TUBE, ((0.2, 0.55, 0.55), (0.3, 0.35, 0.12)), 22.0),
    ("intestine", ELLIPSOID, (0.0, -0.3, 0.37), (110.0, 70.0, 75.0)),
    ("colon", TUBE, ((0.08, 0.4, 0.2), (0.35, 0.25, 0.26), (0.6, 0.2, 0.32), (0.62, 0.15, 0.58),
                     (0.5, -0.15, 0.63), (0.2, -0.6, 0.56), (-0.3, -0.6, 0.56), (-0.6, -0.15, 0.56),
                     (-0.62, 0.1, 0.35), (-0.5, 0.0, 0.26)), 19.0),
    ("rectum", TUBE, ((0.0, 0.55, 0.03), (0.02, 0.5, 0.13), (0.08, 0.4, 0.2)), 17.0),
    ("bladder", ELLIPSOID, (0.0, -0.35, 0.14), (45.0, 35.0, 32.0)),
    ("prostate", ELLIPSOID, (0.0, -0.2, 0.05), (17.0, 15.0, 17.0)),
    ("right lung", ELLIPSOID, (-0.47, 0.1, 1.06), (85.0, 105.0, 125.0)),
    ("left lung", ELLIPSOID, (0.47, 0.1, 1.06), (80.0, 105.0, 120.0)),
    ("heart", ELLIPSOID, (0.08, -0.4, 1.02), (70.0, 55.0, 60.0)),
    ("stomach", ELLIPSOID, (0.35, -0.3, 0.7), (60.0, 45.0, 55.0)),
    ("duodenum", TUBE, ((0.1, -0.45, 0.63), (-0.2, -0.3, 0.62), (-0.3, -0.05, 0.55), (-0.2, 0.05, 0.47),
                        (0.05, 0.05, 0.47)), 13.0),
    ("pancreas", TUBE, ((-0.17, -0.1, 0.54), (0.1, -0.02, 0.58), (0.45, 0.2, 0.63)), 16.0),
    ("liver", ELLIPSOID, (-0.45, -0.05, 0.72), (100.0, 95.0, 68.0)),
    ("liver", ELLIPSOID, (0.0, -0.45, 0.8), (70.0, 38.0, 40.0)),
    ("gall bladder", ELLIPSOID, (-0.35, -0.55, 0.63), (19.0, 19.0, 30.0)),
    ("spleen", ELLIPSOID, (0.68, 0.42, 0.72), (35.0, 50.0, 55.0)),
    ("right kidney", ELLIPSOID, (-0.42, 0.5, 0.5), (30.0, 30.0, 55.0)),
    ("left kidney", ELLIPSOID, (0.42, 0.5, 0.54), (30.0, 30.0, 55.0)),
    ("right adrenal gland", ELLIPSOID, (-0.25, 0.45, 0.67), (12.0, 15.0, 20.0)),
    ("left adrenal gland", ELLIPSOID, (0.27, 0.42, 0.68), (12.0, 15.0, 20.0)),
    ("aorta", TUBE, ((0.08, 0.3, 1.02), (0.07, 0.28, 0.6), (0.05, 0.25, 0.28)), 12.0),
    ("postcava", TUBE, ((-0.15, 0.25, 0.3), (-0.15, 0.2, 0.7), (-0.12, 0.0, 0.86)), 12.0),
    ("portal vein and splenic vein", TUBE, ((0.6, 0.35, 0.66), (0.1, 0.12, 0.59), (-0.2, -0.02, 0.65),
                                            (-0.35, -0.05, 0.7)), 8.0),
    ("celiac trunk", TUBE, ((0.08, 0.27, 0.64), (0.1, 0.0, 0.655)), 8.0),
    ("esophagus", TUBE, ((0.02, 0.25, 1.02), (0.05, 0.15, 0.84), (0.22, -0.12, 0.74)), 10.0),
    ("right head of femur", ELLIPSOID, (-0.52, 0.0, 0.07), (24.0, 24.0, 24.0)),
    ("left head of femur", ELLIPSOID, (0.52, 0.0, 0.07), (24.0, 24.0, 24.0)),
    ("spine", TUBE, ((0.0, 0.78, -0.05), (0.0, 0.72, 0.5), (0.0, 0.78, 1.05)), 24.0),
)
"""The drawing order of the non-hosted structures; names outside the taxonomy are unlabelled tissue."""

HOSTED: tuple[tuple[str, tuple[str, ...], float, tuple[float, float]], ...] = (
    # name, possible hosts, probability of being present, radius range (mm)
    ("kidney tumor", ("right kidney", "left kidney"), 0.6, (12.0, 22.0)),
    ("kidney cyst", ("right kidney", "left kidney"), 0.6, (8.0, 12.0)),
    ("liver tumor", ("liver",), 0.6, (11.0, 22.0)),
    ("hepatic vessel tumor", ("liver",), 0.6, (10.0, 16.0)),
    ("pancreas tumor", ("pancreas",), 0.6, (10.0, 15.0)),
    ("lung tumor", ("right lung", "left lung"), 0.6, (9.0, 18.0)),
    ("colon tumor", ("colon",), 0.6, (12.0, 18.0)),
)
"""Tumours and cysts, drawn in this order inside one host each (a later one wins an overlap)."""

HOSTED_NAMES = frozenset(name for name, *_ in HOSTED)

HU: dict[str, float] = {
    "air": -1000, "fat": -100, "body wall": 55, "psoas": 55, "heart": 45, "spine": 380,
    "intestine": 35, "colon": -150, "rectum": -60, "bladder": 10, "prostate": 45, "right lung": -850,
    "left lung": -850, "stomach": 20, "duodenum": 40, "pancreas": 95, "liver": 105, "gall bladder": 12,
    "spleen": 118, "right kidney": 170, "left kidney": 170, "right adrenal gland": 35,
    "left adrenal gland": 35, "aorta": 175, "postcava": 135, "portal vein and splenic vein": 160,
    "celiac trunk": 175, "esophagus": 45, "right head of femur": 420, "left head of femur": 420,
    "hepatic vessel": 165, "kidney cyst": 5, "kidney tumor": 85, "liver tumor": 55,
    "hepatic vessel tumor": 145, "pancreas tumor": 40, "lung tumor": 30, "colon tumor": 60,
}
"""Mean Hounsfield units of each tissue (portal-venous phase)."""


@dataclass
class Phantom:
    """One synthetic CT: an int16 HU image (LPS) and a bool mask (z, y, x) for every universal class."""

    image: sitk.Image
    masks: dict[str, np.ndarray]
    sex: str
    seed: int

    @property
    def present(self) -> list[str]:
        """The classes with at least one voxel."""
        return [name for name, mask in self.masks.items() if mask.any()]


# ---------------------------------------------------------------- primitives on the voxel grid

class _Frame:
    """Body-frame coordinates (mm) of every voxel, and the case's random deformation fields."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int, int], spacing: np.ndarray,
                 body: np.ndarray):
        self.rng, self.shape, self.spacing, self.body = rng, shape, spacing, body
        self.scale = body / np.array(BODY_SIZE)
        z, y, x = (np.arange(n) * s for n, s in zip(shape, spacing[::-1]))
        x, y = x - x.mean(), y - y.mean()
        yaw = np.deg2rad(rng.uniform(-6, 6))
        grid_z, grid_y, grid_x = np.meshgrid(z, y, x, indexing="ij", sparse=True)
        self.x = np.cos(yaw) * grid_x - np.sin(yaw) * grid_y
        self.y = np.sin(yaw) * grid_x + np.cos(yaw) * grid_y
        self.z = grid_z
        self.noise = [smooth_noise(rng, shape, 5) for _ in range(3)]

    def point(self, uvt: Sequence[float], jitter: float = 0.0) -> np.ndarray:
        """A body-frame point (mm) from fractions of half-width, half-depth and height."""
        u, v, t = np.asarray(uvt) + self.rng.uniform(-jitter, jitter, 3)
        return np.array([u * self.body[0] / 2, v * self.body[1] / 2, t * self.body[2]])

    def deformation(self) -> np.ndarray:
        """A random mix of the case's smooth noise fields."""
        w = self.rng.normal(0, 1, len(self.noise))
        return sum(wi * n for wi, n in zip(w, self.noise)) / np.linalg.norm(w)

    def ellipsoid(self, centre: np.ndarray, radii: np.ndarray, wobble: float = 0.25) -> np.ndarray:
        """Voxels inside the ellipsoid (axis-aligned in the body frame), its surface deformed."""
        d = ((self.x - centre[0]) / radii[0]) ** 2 + ((self.y - centre[1]) / radii[1]) ** 2 \
            + ((self.z - centre[2]) / radii[2]) ** 2
        return d + wobble * self.deformation() <= 1

    def tube(self, points: Sequence[np.ndarray], radius: float, wobble: float = 0.2) -> np.ndarray:
        """Voxels within ``radius`` of the polyline through ``points``."""
        dist = np.full(self.shape, np.inf)
        for a, b in zip(points[:-1], points[1:]):
            ab = b - a
            rel = (self.x - a[0], self.y - a[1], self.z - a[2])
            s = np.clip(sum(r * c for r, c in zip(rel, ab)) / ab.dot(ab), 0, 1)
            dist = np.minimum(dist, sum((r - s * c) ** 2 for r, c in zip(rel, ab)))
        return np.sqrt(dist) / radius + wobble * self.deformation() <= 1


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], cell: float) -> np.ndarray:
    """Unit-variance noise varying smoothly over about ``cell`` voxels."""
    coarse = rng.normal(0, 1, [max(2, int(np.ceil(n / cell)) + 1) for n in shape])
    field = ndimage.zoom(coarse, [n / c for n, c in zip(shape, coarse.shape)], order=1, grid_mode=True,
                         mode="nearest")
    return (field - field.mean()) / (field.std() + 1e-6)


# ---------------------------------------------------------------- the case

def _body_masks(frame: _Frame) -> tuple[np.ndarray, np.ndarray]:
    """The body outline and its inner (visceral) part inside fat and muscle wall."""
    half = frame.body[:2] / 2
    r = np.sqrt((frame.x / half[0]) ** 2 + (frame.y / half[1]) ** 2) + 0.02 * frame.noise[0]
    body = np.broadcast_to(r <= 1, frame.shape)
    wall = frame.rng.uniform(25, 40)
    inner = np.broadcast_to(r <= 1 - wall / half[1], frame.shape)
    return body, inner


def _organ_owner(frame: _Frame, sex: str) -> tuple[np.ndarray, list[str]]:
    """Index into the returned names of the structure owning each voxel (0: none)."""
    names = ["none"]
    owner = np.zeros(frame.shape, np.int16)
    size = frame.rng.uniform(0.85, 1.15)
    for name, kind, where, size_mm in ORGANS:
        if name == "prostate" and sex != "M":
            continue
        scale = size * frame.scale * frame.rng.uniform(0.9, 1.1, 3)
        if kind == ELLIPSOID:
            mask = frame.ellipsoid(frame.point(where, 0.03), np.asarray(size_mm) * scale)
        else:
            mask = frame.tube([frame.point(p, 0.02) for p in where], size_mm * scale.mean())
        if name not in names:
            names.append(name)
        owner[mask] = names.index(name)
    return owner, names


def _hepatic_vessels(frame: _Frame, liver: np.ndarray) -> np.ndarray:
    """Three to five branches from the liver hilum into the liver."""
    hilum = frame.point((-0.35, -0.05, 0.7))
    vessels = np.zeros(frame.shape, bool)
    for _ in range(frame.rng.integers(3, 6)):
        vessels |= frame.tube([hilum, _random_point(frame, liver)], 6.5 * frame.scale.mean(), wobble=0.1)
    return vessels & liver


def _random_point(frame: _Frame, mask: np.ndarray, depth: float = 0.0) -> np.ndarray:
    """The body-frame position (mm) of a random voxel of ``mask``, at least ``depth`` mm inside it
    where it is that thick."""
    deep = ndimage.distance_transform_edt(mask, sampling=frame.spacing[::-1]) >= depth
    inside = np.argwhere(deep if deep.any() else mask)
    z, y, x = inside[frame.rng.integers(len(inside))]
    return np.array([frame.x[0, y, x], frame.y[0, y, x], frame.z[z, 0, 0]])


def _blob_in(frame: _Frame, host: np.ndarray, radius: float) -> np.ndarray:
    """A deformed ball of ``radius`` mm centred well inside ``host``, clipped to it."""
    return frame.ellipsoid(_random_point(frame, host, 0.6 * radius), radius * frame.rng.uniform(0.8, 1.2, 3), wobble=0.3) & host


def _masks(frame: _Frame, sex: str, body: np.ndarray, inner: np.ndarray,
           lesions: Mapping[str, Sequence[float]] | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Masks of the universal classes (hosts include what they host) and of unlabelled tissue; the
    tumours of ``lesions``, or the default random ones."""
    owner, names = _organ_owner(frame, sex)
    structures = {name: owner == i for i, name in enumerate(names) if i}
    empty = np.zeros(frame.shape, bool)
    masks = {name: structures.get(name, empty) & inner for name in CLASS_NAMES}
    masks["hepatic vessel"] = _hepatic_vessels(frame, masks["liver"])
    if lesions is None:
        _random_tumours(frame, masks)
    else:
        _planned_lesions(frame, masks, lesions)
    masks["hepatic vessel"] &= ~_tumours(masks)
    other = {name: mask & body for name, mask in structures.items() if name not in masks}
    return masks, other


def _add_lesion(masks: dict[str, np.ndarray], name: str, blob: np.ndarray) -> None:
    """``blob`` becomes part of ``name`` and leaves the other hosted structures."""
    masks[name] = masks[name] | blob
    for other in HOSTED_NAMES - {name}:
        masks[other] = masks[other] & ~blob


def _random_tumours(frame: _Frame, masks: dict[str, np.ndarray]) -> None:
    """The default tumours: each ``HOSTED`` structure with its probability, one lesion in its radius range."""
    for name, hosts, probability, radii in HOSTED:
        host = masks[hosts[frame.rng.integers(len(hosts))]] & ~_tumours(masks)
        if frame.rng.random() < probability and host.sum() > 20:
            _add_lesion(masks, name, _blob_in(frame, host, frame.rng.uniform(*radii)))


def _planned_lesions(frame: _Frame, masks: dict[str, np.ndarray], lesions: Mapping[str, Sequence[float]]) -> None:
    """One lesion per diameter (mm) of ``lesions``, each inside a host of its class (chosen at random
    where there are two) and apart from the lesions drawn before it, so that each is its own
    26-connected component. A lesion whose host has no room left is not drawn."""
    unknown = set(lesions) - HOSTED_NAMES
    if unknown:
        raise ValueError(f"lesions: {sorted(unknown)} are not tumours or cysts ({sorted(HOSTED_NAMES)})")
    for name, hosts, _, _ in HOSTED:
        for diameter in lesions.get(name, ()):
            host = masks[hosts[frame.rng.integers(len(hosts))]]
            free = host & ~ndimage.binary_dilation(_tumours(masks), np.ones((3, 3, 3), bool))
            if free.any():
                _add_lesion(masks, name, _blob_in(frame, free, diameter / 2))


def _tumours(masks: dict[str, np.ndarray]) -> np.ndarray:
    return np.logical_or.reduce([masks[name] for name in HOSTED_NAMES])


def _hounsfield(frame: _Frame, masks: dict[str, np.ndarray], other: dict[str, np.ndarray],
                body: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """CT values: tissue means with per-case contrast jitter, texture, gas, blur and noise."""
    rng = frame.rng
    hu = np.full(frame.shape, HU["air"], np.float32)
    hu[body] = HU["body wall"]
    hu[inner] = HU["fat"]
    contrast = rng.uniform(0.85, 1.15)
    for name, mask in [*other.items(), *((n, masks[n]) for n in CLASS_NAMES if n not in HOSTED_NAMES)]:
        value = HU[name] + rng.normal(0, 6)
        hu[mask] = value * contrast if value > 80 else value
    for name, *_ in HOSTED:
        hu[masks[name]] = HU[name] + rng.normal(0, 8)
    texture = smooth_noise(rng, frame.shape, 2)
    gas = (texture > 0.6) & (masks["colon"] | masks["rectum"] | (masks["intestine"] & (texture > 1.3)))
    if masks["stomach"].any():
        y = np.broadcast_to(frame.y, frame.shape)
        gas |= masks["stomach"] & (y < np.percentile(y[masks["stomach"]], 25))
    gas &= ~_tumours(masks)
    hu[gas] = -850
    hu += 12 * texture * (hu > -500)
    femurs = masks["right head of femur"] | masks["left head of femur"]
    hu[femurs & ~ndimage.binary_erosion(femurs)] = 800
    hu = ndimage.gaussian_filter(hu, 0.6)
    hu += rng.normal(0, rng.uniform(8, 18), frame.shape)
    return np.clip(hu, -1024, 3000).astype(np.int16)


def _draw_geometry(rng: np.random.Generator, shape, spacing) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray]:
    """Voxel grid (z, y, x), spacing (x, y, z) and body size (width, depth, height) of a case."""
    body = np.array(BODY_SIZE) * rng.uniform(0.9, 1.1, 3)
    if spacing is None:
        spacing = np.array(DEFAULT_SPACING) * rng.uniform(0.9, 1.1, 3) if shape is None \
            else body * FOV_MARGIN / np.array(shape[::-1])
    spacing = np.asarray(spacing, float)
    if shape is None:
        shape = tuple(int(round(n)) for n in (body * FOV_MARGIN / spacing)[::-1])
    else:
        body = np.array(shape[::-1]) * spacing / np.array(FOV_MARGIN)
    return tuple(int(n) for n in shape), spacing, body


def generate_phantom(seed: int, shape: Sequence[int] | None = None, spacing: Sequence[float] | None = None,
                     sex: str | None = None, lesions: Mapping[str, Sequence[float]] | None = None) -> Phantom:
    """A random phantom.

    ``shape`` is (z, y, x) voxels and ``spacing`` (x, y, z) mm, SimpleITK's order. Without either,
    both are drawn around ``DEFAULT_SPACING`` and the body size; with one, the other follows from
    the body size; with both, the body fills that field of view. ``sex`` "M" has a prostate.
    ``lesions``: tumour or cyst class -> diameters (mm) of its lesions (``lesions.TumourCohort``
    draws them); the classes not named are absent. Without it, each ``HOSTED`` structure is there
    with its probability, as one lesion.
    """
    rng = np.random.default_rng(seed)
    shape, spacing, body = _draw_geometry(rng, shape, spacing)
    sex = sex or ("M" if rng.random() < 0.5 else "F")
    frame = _Frame(rng, shape, spacing, body)
    body_mask, inner = _body_masks(frame)
    masks, other = _masks(frame, sex, body_mask, inner, lesions)
    image = sitk.GetImageFromArray(_hounsfield(frame, masks, other, body_mask, inner))
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in rng.uniform(-50, 50, 3) - np.array([*body[:2] / 2, 600.0])))
    return Phantom(image, masks, sex, seed)
