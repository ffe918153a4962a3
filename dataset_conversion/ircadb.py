"""3D-IRCADb-01 (IRCAD): ``3Dircadb1/3Dircadb1.N/{PATIENT_DICOM,MASKS_DICOM}[.zip]``.

One DICOM series per patient, and one DICOM mask series (0/255) per structure in
``MASKS_DICOM/<structure>/`` (``MASKS_DICOM/MASKS_DICOM/`` when unzipped into a same-named folder).
The zips are read without unpacking them by hand. Converted structures are CLIP's nine (template
``06``); a case annotates those whose mask folder it has. The scans are LiTS volumes 28-47.
"""
from __future__ import annotations

import zipfile
from functools import partial
from pathlib import Path

import SimpleITK as sitk

from dataset_conversion import discover, readers
from dataset_conversion.labels import LabelMap, classes_of, expand
from dataset_conversion.source import Case, Found, Options, Source
from nnunet_clip.errors import InputError

STRUCTURES = {
    "spleen": ("spleen",),
    "rightkidney": ("right kidney",),
    "leftkidney": ("left kidney",),
    "kidneys": ("kidney",),
    "gallbladder": ("gall bladder",),
    "liver": ("liver",),
    "stomach": ("stomach",),
    "pancreas": ("pancreas",),
    "rightlung": ("right lung",),
    "leftlung": ("left lung",),
    "lungs": ("lung",),
}
"""Mask folder (lower case) -> classes; ``kidneys`` and ``lungs`` are split by side."""
MASKS = "MASKS_DICOM"


def _inner(folder: Path) -> Path:
    return folder / MASKS if (folder / MASKS).is_dir() else folder


def structure_names(patient: Path) -> set[str]:
    """Lower-case names of the mask folders, from the folder or from the zip's listing."""
    folder = patient / MASKS
    if folder.is_dir():
        return {d.name.lower() for d in _inner(folder).iterdir() if d.is_dir()}
    archive = patient / f"{MASKS}.zip"
    if not archive.is_file():
        raise InputError(f"{folder}: missing folder (nor {archive.name} beside it)")
    try:
        with zipfile.ZipFile(archive) as z:
            entries = [n.split("/") for n in z.namelist()]
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{archive}: cannot be read ({e})") from None
    names = set()
    for parts in entries:
        while parts and parts[0] == MASKS:
            parts = parts[1:]
        if len(parts) > 1 and parts[1]:
            names.add(parts[0].lower())
    return names


def read_case(patient: Path) -> tuple[sitk.Image, LabelMap]:
    """The patient's series and the masks of the converted structures."""
    with readers.unpacked(patient / "PATIENT_DICOM") as folder:
        image, _ = readers.read_dicom_series(folder)
    masks = []
    with readers.unpacked(patient / MASKS) as folder:
        by_name = {d.name.lower(): d for d in _inner(folder).iterdir() if d.is_dir()}
        for name, classes in STRUCTURES.items():
            if name in by_name:
                where = patient / MASKS / by_name[name].name
                mask, _ = readers.read_dicom_series(by_name[name])
                mask = readers.aligned(mask, image, where, patient / "PATIENT_DICOM")
                masks.append((readers.binary_mask(mask, where, SOURCE.name), classes))
    return image, LabelMap.from_masks(masks)


class Ircadb(Source):
    name = "ircadb"
    summary = "3D-IRCADb-01 (DICOM, zipped or not), CLIP's 9 organs"
    annotated = tuple(expand(classes_of(STRUCTURES)))

    def find(self, root: Path, options: Options) -> Found:
        patients = discover.match(root, discover.walk(root, 3, folders=True), r"3Dircadb1\.(\d+)")
        if not patients:
            raise discover.nothing_found(root, self.name, "3Dircadb1/3Dircadb1.1/PATIENT_DICOM.zip")
        cases = []
        for source_id in discover.sort_ids(patients):
            present = structure_names(patients[source_id]) & set(STRUCTURES)
            if not present:
                raise InputError(f"{patients[source_id] / MASKS}: no mask of "
                                 f"{', '.join(STRUCTURES)}")
            annotated = tuple(expand(c for name in present for c in STRUCTURES[name]))
            cases.append(Case(source_id, (patients[source_id],), annotated,
                              partial(read_case, patients[source_id])))
        return Found(cases)


SOURCE = Ircadb()
