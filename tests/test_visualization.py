"""The overlay preview: a PNG with the classes coloured where they are, patient's right on the left."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import numpy as np
import SimpleITK as sitk

from nnunet_clip.visualization import class_color, save_overlay_png


def _case(orientation: str):
    """A grey box in LPS with a 'liver' block on the patient's right (low x) and 'spleen' on the left."""
    array = np.full((20, 30, 40), 40, np.int16)
    masks = {"liver": np.zeros(array.shape, bool), "spleen": np.zeros(array.shape, bool)}
    masks["liver"][5:15, 10:20, 2:12] = True
    masks["spleen"][5:15, 10:20, 28:38] = True
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 4.0))

    def orient(a):
        i = sitk.GetImageFromArray(a.astype(np.uint8))
        i.CopyInformation(image)
        return sitk.GetArrayFromImage(sitk.DICOMOrient(i, orientation))

    return sitk.DICOMOrient(image, orientation), {n: orient(m).astype(bool) for n, m in masks.items()}


def _panels(png: np.ndarray) -> list[np.ndarray]:
    """The figure's image panels (axial, coronal): runs of columns that are not white background."""
    drawn = (png[..., :3] < 0.95).any(axis=-1).sum(axis=0) > 100
    edges = np.flatnonzero(np.diff(np.r_[0, drawn.astype(int), 0]))
    return [png[:, a:b] for a, b in zip(edges[::2], edges[1::2])]


def _colour_columns(panel: np.ndarray, name: str) -> np.ndarray:
    """Columns of a panel holding the class's colour blended over 40 HU (window -200..300)."""
    blend = 0.5 * np.asarray(class_color(name)) + 0.5 * (40 + 200) / 500
    return np.flatnonzero((np.abs(panel[..., :3] - blend).max(axis=-1) < 0.03).any(axis=0))


def test_overlay_png_places_classes_by_patient_side(tmp_path):
    for orientation in ("LPS", "RAS", "IPL"):
        image, masks = _case(orientation)
        path = save_overlay_png(image, masks, tmp_path / f"{orientation}.png", title="test")
        png = mpimg.imread(path)
        assert png.shape[:2] == (550, 1100)
        panels = _panels(png)
        assert len(panels) == 2, "axial and coronal"
        for panel in panels:
            liver, spleen = _colour_columns(panel, "liver"), _colour_columns(panel, "spleen")
            assert liver.size > 20 and spleen.size > 20, orientation
            assert liver.max() < spleen.min(), f"{orientation}: patient's right must be on the viewer's left"


def test_empty_masks_and_explicit_slices(tmp_path):
    image, masks = _case("LPS")
    path = save_overlay_png(image, {"liver": np.zeros_like(masks["liver"])}, tmp_path / "empty.png", axial=3)
    png = mpimg.imread(path)
    assert all(_colour_columns(panel, "liver").size == 0 for panel in _panels(png))
    assert png[..., :3].std() > 0.05  # the CT is drawn


def test_class_colours_are_fixed_and_distinct():
    from nnunet_clip.taxonomy import CLASS_NAMES

    colours = {class_color(n) for n in CLASS_NAMES}
    assert class_color("liver") == class_color("liver")
    assert len(colours) >= 30
