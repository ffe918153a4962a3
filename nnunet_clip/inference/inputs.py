"""What ``-i`` names: one image file, a folder of image files (any names), or DICOM series folders.

Each case is read when its turn comes, so that a corrupt file fails that case only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet_clip.errors import InputError
from nnunet_clip import nifti

IMAGE_ENDINGS = (".nii.gz", ".nii", ".mha", ".nrrd")
CHANNEL_SUFFIX = "_0000"
"""nnU-Net's channel suffix; dropped from case names, so that ``case_0000.nii.gz`` is written as ``case``."""


@dataclass(frozen=True)
class InputCase:
    """One scan: its output name and the file, or the DICOM series files (in slice order), it is read from."""

    name: str
    files: tuple[str, ...]
    dicom: bool = False

    @property
    def source(self) -> str:
        """The file, or the DICOM series' folder, that the case is read from."""
        return self.files[0] if len(self.files) == 1 else str(Path(self.files[0]).parent)

    def read(self) -> sitk.Image:
        """The scan as a 3D single-channel image of finite values; InputError naming the file if it
        cannot be read or is not one."""
        problem = nifti.problem(self.files[0]) if len(self.files) == 1 else None
        if problem:
            raise InputError(f"{self.source}: {problem}")
        try:
            if len(self.files) == 1:
                image = sitk.ReadImage(self.files[0])
            else:
                reader = sitk.ImageSeriesReader()
                reader.SetFileNames(list(self.files))
                image = reader.Execute()
        except RuntimeError as e:
            raise InputError(f"{self.source}: cannot be read ({_first_error_line(e)})") from e
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(f"{self.source}: expected a 3D single-channel scan, got {image.GetDimension()}D with "
                             f"{image.GetNumberOfComponentsPerPixel()} channel(s) of size {image.GetSize()}")
        if image.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64) and \
                not np.isfinite(sitk.GetArrayViewFromImage(image)).all():
            raise InputError(f"{self.source}: image holds NaN or infinite values")
        return image


def _first_error_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if "ERROR" in line.upper() or "unable" in line.lower()), lines[-1] if lines
                else type(error).__name__)[:200]


def _case_name(path: Path) -> str:
    name = path.name
    ending = next((e for e in IMAGE_ENDINGS if name.lower().endswith(e)), path.suffix)
    name = name[:len(name) - len(ending)]
    return name[:-len(CHANNEL_SUFFIX)] if name.endswith(CHANNEL_SUFFIX) else name


def _dicom_series(folder: Path) -> list[tuple[str, ...]]:
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK warns of every folder without a series
    try:
        return [tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
                for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))]
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)


def find_cases(path: str | os.PathLike) -> list[InputCase]:
    """The cases under ``path``: image files by name, then every DICOM series in it or its subfolders."""
    path = Path(path)
    if path.is_file():
        return [InputCase(_case_name(path), (str(path),))]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder")
    cases = [InputCase(_case_name(p), (str(p),)) for p in sorted(path.iterdir())
             if p.is_file() and p.name.lower().endswith(IMAGE_ENDINGS)]
    for folder in sorted({Path(d) for d, _, _ in os.walk(path)}):
        series = _dicom_series(folder)
        base = path.name if folder == path else "_".join(folder.relative_to(path).parts)
        cases += [InputCase(base if len(series) == 1 else f"{base}_{i}", files, dicom=True)
                  for i, files in enumerate(series)]
    if not cases:
        raise InputError(f"{path}: no image files ({', '.join(IMAGE_ENDINGS)}) and no DICOM series")
    names = [c.name for c in cases]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise InputError(f"{path}: several inputs would be written as {', '.join(clashes)}; rename them")
    return cases
