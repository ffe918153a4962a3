"""A 32-class region dataset of random boxes, for the benchmarks: its cost matters, not its anatomy."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


def write_blob_dataset(folder: Path, shape: Sequence[int], num_cases: int, half_size: Sequence[int],
                       spacing: Sequence[float] = (1.0, 1.0, 1.0),
                       annotated: Callable[[int], Sequence[str]] | None = None) -> None:
    """``num_cases`` int16 images of ``shape`` (z y x) with one box of every class, spacing z y x.

    ``annotated(i)``: the classes case i annotates (default: all 32).
    """
    import SimpleITK as sitk

    from nnunet_clip.taxonomy import CLASS_NAMES, dataset_labels

    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(exist_ok=True)
    labels, order = dataset_labels()
    rng = np.random.default_rng(0)
    cases = {}
    for i in range(num_cases):
        image = rng.normal(0, 50, shape).astype(np.int16)
        label = np.zeros(shape, np.uint8)
        for value in range(1, len(CLASS_NAMES) + 1):
            centre = [rng.integers(h + 1, s - h - 1) for s, h in zip(shape, half_size)]
            label[tuple(slice(c - h, c + h) for c, h in zip(centre, half_size))] = value
            image[label == value] += 20 * value
        case = f"case_{i:03d}"
        for array, path in ((image, folder / "imagesTr" / f"{case}_0000.nii.gz"),
                            (label, folder / "labelsTr" / f"{case}.nii.gz")):
            itk = sitk.GetImageFromArray(array)
            itk.SetSpacing([float(s) for s in spacing[::-1]])
            sitk.WriteImage(itk, str(path))
        cases[case] = list(annotated(i) if annotated else CLASS_NAMES)
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": labels, "regions_class_order": order, "numTraining": num_cases,
        "file_ending": ".nii.gz", "annotated_classes": cases}))
