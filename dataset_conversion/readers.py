"""Reading source files (NIfTI, DICOM series, PNG slices, zip archives) with one-line errors.

Every problem raises ``InputError("<file>: <what is wrong>")``.
"""
from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Collection, Iterator

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from dataset_conversion import discover
from nnunet_clip.errors import InputError
from nnunet_clip.geometry import not_ct_warning
from nnunet_clip import nifti

HU_MIN, HU_MAX = -32768, 32767


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def zip_member(path: Path) -> tuple[Path, str] | None:
    """(archive, member) when ``path`` names a file inside a zip archive (``discover.walk`` lists them)."""
    for parent in path.parents:
        if parent.suffix.lower() == ".zip" and parent.is_file():
            return parent, path.relative_to(parent).as_posix()
    return None


@contextlib.contextmanager
def local_file(path: Path) -> Iterator[Path]:
    """``path``, or the zip member it names extracted to a temporary file of the same name."""
    if path.is_file():
        yield path
        return
    member = zip_member(path)
    if member is None:
        problem = "broken symbolic link (or a link loop)" if path.is_symlink() else "missing file"
        raise InputError(f"{path}: {problem}")
    archive, name = member
    with tempfile.TemporaryDirectory(prefix="nnunet_clip_") as tmp:
        local = Path(tmp, path.name)
        try:
            with zipfile.ZipFile(archive) as z, z.open(name) as source, open(local, "wb") as target:
                shutil.copyfileobj(source, target)
        except (zipfile.BadZipFile, KeyError, OSError, RuntimeError) as e:
            raise InputError(f"{path}: cannot be read from {archive.name} ({_first_line(e)})") from None
        yield local


def read_image(path: Path) -> sitk.Image:
    """Any file SimpleITK reads (NIfTI, PNG, one DICOM file), also inside a zip archive."""
    with local_file(path) as local:
        problem = nifti.problem(local)
        if problem:
            raise InputError(f"{path}: {problem}")
        try:
            return sitk.ReadImage(str(local))
        except RuntimeError as e:
            raise InputError(f"{path}: cannot be read ({_first_line(e)})") from None


def as_ct(image: sitk.Image, path: Path) -> sitk.Image:
    """A 3D scalar image as int16 Hounsfield units (float values rounded)."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: expected a 3D single-channel CT, got {image.GetDimension()}D "
                         f"with {image.GetNumberOfComponentsPerPixel()} channel(s)")
    if image.GetPixelID() == sitk.sitkInt16:
        return image
    array = sitk.GetArrayFromImage(image)
    if not np.isfinite(array).all():
        raise InputError(f"{path}: image holds NaN or infinite values")
    out = sitk.GetImageFromArray(np.clip(np.rint(array), HU_MIN, HU_MAX).astype(np.int16))
    out.CopyInformation(image)
    return out


def checked_ct(image: sitk.Image, path: Path) -> sitk.Image:
    """``image``, after a warning naming ``path`` if it does not look like a CT in HU (``not_ct_warning``)."""
    warning = not_ct_warning(sitk.GetArrayViewFromImage(image))
    if warning:
        tqdm.write(f"warning: {path}: {warning}", file=sys.stderr)
    return image


def read_ct(path: Path) -> sitk.Image:
    """A CT volume file as int16 HU."""
    return checked_ct(as_ct(read_image(path), path), path)


def _orientation(image: sitk.Image) -> str:
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())


def _mismatch(label: sitk.Image, image: sitk.Image) -> str | None:
    if label.GetSize() != image.GetSize():
        return f"size {label.GetSize()} vs {image.GetSize()}"
    if not np.allclose(label.GetSpacing(), image.GetSpacing(), rtol=1e-3, atol=0):
        return f"spacing {label.GetSpacing()} vs {image.GetSpacing()}"
    if not np.allclose(label.GetDirection(), image.GetDirection(), atol=1e-3):
        return f"direction {label.GetDirection()} vs {image.GetDirection()}"
    return None


def aligned(label: sitk.Image, image: sitk.Image, label_path: Path, image_path: Path,
            origin_tolerant: bool = False) -> sitk.Image:
    """``label`` on the voxel grid of ``image``: reoriented (axes permuted or flipped) when its
    header says so; an error naming the file when the grids differ otherwise.

    With ``origin_tolerant`` a label whose origin alone differs is taken to share the image's grid.
    """
    if label.GetDimension() != image.GetDimension():
        raise InputError(f"{label_path}: {label.GetDimension()}D label for a "
                         f"{image.GetDimension()}D image {image_path}")
    if not np.allclose(label.GetDirection(), image.GetDirection(), atol=1e-3):
        label = sitk.DICOMOrient(label, _orientation(image))
    problem = _mismatch(label, image)
    tolerance = 1e-2 * max(image.GetSpacing()) + 1e-3
    if problem is None and not origin_tolerant and not np.allclose(
            label.GetOrigin(), image.GetOrigin(), rtol=0, atol=tolerance):
        problem = f"origin {label.GetOrigin()} vs {image.GetOrigin()}"
    if problem:
        raise InputError(f"{label_path}: geometry does not match the image {image_path} ({problem})")
    label = sitk.Image(label)
    label.CopyInformation(image)
    return label


def label_codes(array: np.ndarray, path: Path, defined: Collection[int], source: str) -> np.ndarray:
    """Integer label values of ``array`` (floats must be whole numbers); every nonzero value must be
    ``defined`` by the source."""
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InputError(f"{path}: label holds NaN or infinite values")
        rounded = np.rint(array)
        if np.abs(array - rounded).max(initial=0) > 1e-3:
            raise InputError(f"{path}: label values are not whole numbers")
        array = rounded
    elif array.dtype.kind not in "iub":
        raise InputError(f"{path}: unsupported label type {array.dtype}")
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    allowed = set(int(v) for v in defined) | {0}
    if low < 0 or high > max(allowed):
        bad = low if low < 0 else high
        raise InputError(f"{path}: label value {bad} is not defined by {source} "
                         f"(defined: {', '.join(map(str, sorted(allowed)))})")
    codes = array.astype(np.uint8 if high < 256 else np.uint16)
    known = np.zeros(max(allowed) + 1, bool)
    known[list(allowed)] = True
    if not known[codes].all():
        undefined = int(np.unique(codes[~known[codes]])[0])
        raise InputError(f"{path}: label value {undefined} is not defined by {source} "
                         f"(defined: {', '.join(map(str, sorted(allowed)))})")
    return codes


def binary_mask(image: sitk.Image, path: Path, source: str) -> np.ndarray:
    """A 0/1 or 0/255 mask file as a bool array."""
    codes = label_codes(sitk.GetArrayViewFromImage(image), path, (1, 255), source)
    return codes > 0


def read_dicom_series(folder: Path) -> tuple[sitk.Image, list[Path]]:
    """The DICOM slices of ``folder`` as one int16 volume, ordered by ImagePositionPatient along
    the slice normal (file names and series UIDs are not trusted); also the files in that order."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"{folder}: no DICOM files in this folder")
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    keys = []
    normal = None
    for f in files:
        reader.SetFileName(str(f))
        try:
            reader.ReadImageInformation()
            position = [float(v) for v in reader.GetMetaData("0020|0032").split("\\")]
            cosines = [float(v) for v in reader.GetMetaData("0020|0037").split("\\")]
        except RuntimeError as e:
            raise InputError(f"{f}: not a readable DICOM slice with a position ({_first_line(e)})") from None
        if normal is None:
            normal = np.cross(cosines[:3], cosines[3:])
        keys.append(float(np.dot(position, normal)))
    order = np.argsort(keys, kind="stable")
    if len(set(np.round(keys, 3))) != len(keys):
        raise InputError(f"{folder}: two DICOM slices share one position")
    ordered = [files[i] for i in order]
    series = sitk.ImageSeriesReader()
    series.SetImageIO("GDCMImageIO")
    series.SetFileNames([str(f) for f in ordered])
    try:
        image = series.Execute()
    except RuntimeError as e:
        raise InputError(f"{folder}: DICOM series cannot be read ({_first_line(e)})") from None
    return as_ct(image, folder), ordered


def read_png(path: Path) -> np.ndarray:
    """A 2D slice mask (rows, columns); the first channel of a colour file."""
    array = sitk.GetArrayFromImage(read_image(path))
    return array[..., 0] if array.ndim == 3 else array


@contextlib.contextmanager
def unpacked(folder: Path) -> Iterator[Path]:
    """``folder`` (``discover.unwrapped``), or ``folder.zip`` extracted to a temporary place: the
    folder of the same name in it, if any, else its top level."""
    if folder.is_dir():
        yield discover.unwrapped(folder)
        return
    archive = folder.with_name(folder.name + ".zip")
    if not archive.is_file():
        raise InputError(f"{folder}: missing folder (nor {archive.name} beside it)")
    with tempfile.TemporaryDirectory(prefix="nnunet_clip_") as tmp:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
        except (zipfile.BadZipFile, OSError) as e:
            raise InputError(f"{archive}: cannot be unpacked ({_first_line(e)})") from None
        inner = Path(tmp) / folder.name
        yield discover.unwrapped(inner) if inner.is_dir() else Path(tmp)
