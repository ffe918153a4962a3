"""Preview images: axial and coronal CT slices with coloured class overlays and a legend."""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Mapping

import numpy as np
import SimpleITK as sitk

from nnunet_clip.taxonomy import CLASS_INDEX

WINDOW = (-200.0, 300.0)
"""Soft-tissue display window in HU."""


def class_color(name: str) -> tuple[float, float, float]:
    """A fixed colour per class (by its universal index, else by a checksum of its name), so every
    preview uses the same one."""
    from matplotlib import colormaps

    index = CLASS_INDEX.get(name, zlib.crc32(name.encode()) % 40)
    return colormaps["tab20"](index % 20)[:3] if index <= 20 else colormaps["tab20b"](index % 20)[:3]


def _slices(image: sitk.Image, masks: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict, float]:
    """The image array and masks in LPS, and the height/width ratio of a coronal pixel."""
    oriented = sitk.DICOMOrient(image, "LPS")
    array = sitk.GetArrayFromImage(oriented).astype(np.float32)
    out = {}
    for name, mask in masks.items():
        m = sitk.GetImageFromArray(np.asarray(mask, np.uint8))
        m.CopyInformation(image)
        out[name] = sitk.GetArrayFromImage(sitk.DICOMOrient(m, "LPS")).astype(bool)
    sx, _, sz = oriented.GetSpacing()
    return array, out, sz / sx


def _overlay(gray: np.ndarray, layers: list[tuple[np.ndarray, tuple]], alpha: float = 0.5) -> np.ndarray:
    lo, hi = WINDOW
    g = np.clip((gray - lo) / (hi - lo), 0, 1)
    rgb = np.repeat(g[..., None], 3, axis=-1)
    for mask, color in layers:
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(color)
    return rgb


def _centre(masks: Mapping[str, np.ndarray], axis: int, size: int) -> int:
    """The slice through the centre of all foreground along ``axis``."""
    union = np.logical_or.reduce(list(masks.values())) if masks else np.zeros(1)
    if not union.any():
        return size // 2
    other = tuple(a for a in range(3) if a != axis)
    return int(np.round(np.average(np.arange(size), weights=union.sum(axis=other))))


def save_overlay_png(image: sitk.Image, masks: Mapping[str, np.ndarray], path: str | Path,
                     title: str | None = None, axial: int | None = None, coronal: int | None = None) -> Path:
    """Write an axial and a coronal slice of ``image`` with ``masks`` (class name -> bool array in the
    image's array order) overlaid, and a legend of the classes visible in them.

    Slices default to the centre of the foreground; the patient's right is on the viewer's left.
    Later masks are drawn over earlier ones (give tumours after their organs).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(matplotlib.rcParamsDefault):  # nnU-Net's progress plot changes global fonts
        return _figure(image, masks, Path(path), title, axial, coronal)


def _figure(image: sitk.Image, masks: Mapping[str, np.ndarray], path: Path, title: str | None,
            axial: int | None, coronal: int | None) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    array, masks, aspect = _slices(image, masks)
    depth, height, _ = array.shape
    axial = _centre(masks, 0, depth) if axial is None else axial
    coronal = _centre(masks, 1, height) if coronal is None else coronal
    views = {
        "axial": (array[axial], {n: m[axial] for n, m in masks.items()}, 1.0),
        "coronal": (array[::-1, coronal], {n: m[::-1, coronal] for n, m in masks.items()}, aspect),
    }
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5))
    shown = []
    for ax, (name, (gray, layers, ratio)) in zip(axes, views.items()):
        visible = [(n, m) for n, m in layers.items() if m.any()]
        shown += [n for n, _ in visible if n not in shown]
        ax.imshow(_overlay(gray, [(m, class_color(n)) for n, m in visible]), aspect=ratio, interpolation="nearest")
        ax.set_title(f"{name} slice {axial if name == 'axial' else coronal}", fontsize=11)
        ax.axis("off")
    handles = [Patch(color=class_color(n), label=n) for n in sorted(shown, key=lambda n: CLASS_INDEX.get(n, 0))]
    fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.subplots_adjust(left=0.01, right=0.8, wspace=0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
