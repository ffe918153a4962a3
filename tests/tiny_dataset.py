"""A tiny partially labelled region dataset in nnU-Net's raw format, for the trainer tests.

Two sources: "liversrc" annotates liver and liver tumor, "abdsrc" annotates spleen, liver and both
kidneys. Every case contains every organ in its image; the label file shows only what its source
annotates, exactly as the converters write them. The dataset declares only these five classes
(the trainer accepts any subset of the universal classes), which keeps CPU training fast.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet_clip.taxonomy import atom_table, dataset_labels

SOURCES = {
    "liversrc": ["liver", "liver tumor"],
    "abdsrc": ["spleen", "liver", "right kidney", "left kidney"],
}
CLASSES = sorted(set().union(*SOURCES.values()))
SHAPE = (20, 28, 28)  # z, y, x
SPACING = (2.0, 1.5, 1.5)  # x, y, z as SimpleITK orders it


def _ball(shape, centre, radius):
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return ((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2) <= radius ** 2


def organ_masks(rng: np.random.Generator, shape=SHAPE) -> dict[str, np.ndarray]:
    """Patient's right = low x (LPS, identity direction): liver low x, spleen high x."""
    j = lambda: rng.integers(-1, 2, size=3)
    masks = {
        "liver": _ball(shape, np.array([10, 10, 8]) + j(), 6),
        "spleen": _ball(shape, np.array([10, 10, 21]) + j(), 4),
        "right kidney": _ball(shape, np.array([8, 21, 9]) + j(), 3),
        "left kidney": _ball(shape, np.array([8, 21, 19]) + j(), 3),
    }
    tumor_centre = np.argwhere(masks["liver"])[rng.integers(masks["liver"].sum())]
    masks["liver tumor"] = _ball(shape, tumor_centre, 2) & masks["liver"]
    return masks


def ct_image(rng: np.random.Generator, masks: dict[str, np.ndarray]) -> np.ndarray:
    hu = {"liver": 60, "spleen": 110, "right kidney": 160, "left kidney": 160, "liver tumor": -20}
    image = rng.normal(-80, 20, SHAPE)
    for name in ("liver", "spleen", "right kidney", "left kidney", "liver tumor"):
        image[masks[name]] = rng.normal(hu[name], 10, int(masks[name].sum()))
    return image.astype(np.int16)


def label_map(masks: dict[str, np.ndarray], annotated: list[str], labels: dict) -> np.ndarray:
    """Atom value of every voxel, from the annotated classes only."""
    value_of = {atom: value for value, atom in atom_table(labels).items()}
    voxel_classes = np.zeros(SHAPE, dtype=np.int64)
    for bit, name in enumerate(annotated):
        voxel_classes |= masks[name].astype(np.int64) << bit
    out = np.zeros(SHAPE, dtype=np.uint8)
    for code in np.unique(voxel_classes[voxel_classes > 0]):
        atom = frozenset(n for bit, n in enumerate(annotated) if code >> bit & 1)
        out[voxel_classes == code] = value_of[atom]
    return out


def _write(array: np.ndarray, path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin((-20.0, -20.0, 0.0))
    sitk.WriteImage(image, str(path))


def write_tiny_dataset(root: Path, dataset_id: int = 991, cases_per_source: int = 4, seed: int = 0,
                       omit_from_annotations: str | None = None) -> Path:
    """Write DatasetXXX_Tiny under ``root`` (nnUNet_raw); returns its folder."""
    rng = np.random.default_rng(seed)
    folder = root / f"Dataset{dataset_id:03d}_Tiny"
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(exist_ok=True)
    labels, order = dataset_labels(CLASSES)
    annotated = {}
    for source, classes in SOURCES.items():
        for i in range(cases_per_source):
            case = f"{source}_{i:03d}"
            masks = organ_masks(rng)
            _write(ct_image(rng, masks), folder / "imagesTr" / f"{case}_0000.nii.gz")
            _write(label_map(masks, classes, labels), folder / "labelsTr" / f"{case}.nii.gz")
            annotated[case] = classes
    annotated.pop(omit_from_annotations, None)
    dataset_json = {"channel_names": {"0": "CT"}, "labels": labels, "regions_class_order": order,
                    "numTraining": len(SOURCES) * cases_per_source, "file_ending": ".nii.gz",
                    "annotated_classes": annotated}
    (folder / "dataset.json").write_text(json.dumps(dataset_json, indent=1))
    return folder
