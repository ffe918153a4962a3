"""3D-IRCADb-01 (IRCAD): ``3Dircadb1/3Dircadb1.N/{PATIENT_DICOM,MASKS_DICOM}[.zip]``.

One DICOM series per patient, and one DICOM mask series (0/255) per structure in
``MASKS_DICOM/<structure>/``. The zips are read as they are, or unzipped into the patient's
folder, or into same-named folders (``PATIENT_DICOM/PATIENT_DICOM/``,
``MASKS_DICOM/MASKS_DICOM/<structure>/``). Converted structures are CLIP's nine (template ``06``);
a case annotates those whose mask folder it has. The scans are LiTS volumes 28-47.
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
IMAGE, MASKS = "PATIENT_DICOM", "MASKS_DICOM"


def stored(patient: Path, name: str) -> Path:
    """Where the patient's ``name`` folder is: the folder (inside same-named folders, if unzipped into
    them), else ``name.zip``."""
    folder = patient / name
    if folder.is_dir():
        return discover.unwrapped(folder)
    archive = patient / f"{name}.zip"
    if not archive.is_file():
        raise InputError(f"{folder}: missing folder (nor {archive.name} beside it)")
    return archive


def structure_names(masks: Path) -> set[str]:
    """Lower-case names of the mask folders, from the masks folder or from its zip's listing."""
    if masks.is_dir():
        return {d.name.lower() for d in masks.iterdir() if d.is_dir()}
    try:
        with zipfile.ZipFile(masks) as z:
            entries = [n.split("/") for n in z.namelist()]
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{masks}: cannot be read ({e})") from None
    names = set()
    for parts in entries:
        while parts and parts[0] == MASKS:
            parts = parts[1:]
        if len(parts) > 1 and parts[1]:
            names.add(parts[0].lower())
    return names


def read_case(patient: Path) -> tuple[sitk.Image, LabelMap]:
    """The patient's series and the masks of the converted structures."""
    with readers.unpacked(patient / IMAGE) as folder:
        image = readers.checked_ct(readers.read_dicom_series(folder)[0], patient / IMAGE)
    masks = []
    with readers.unpacked(patient / MASKS) as folder:
        by_name = {d.name.lower(): d for d in folder.iterdir() if d.is_dir()}
        for name, classes in STRUCTURES.items():
            if name in by_name:
                where = patient / MASKS / by_name[name].name
                mask, _ = readers.read_dicom_series(by_name[name])
                mask = readers.aligned(mask, image, where, patient / IMAGE)
                masks.append((readers.binary_mask(mask, where, SOURCE.name), classes))
    return image, LabelMap.from_masks(masks)


class Ircadb(Source):
    name = "ircadb"
    summary = "3D-IRCADb-01 (DICOM, zipped or not), CLIP's 9 organs"
    annotated = tuple(expand(classes_of(STRUCTURES)))

    def find(self, root: Path, options: Options) -> Found:
        patients = discover.match(root, discover.walk(root, 4, folders=True), r"3Dircadb1\.(\d+)")
        if not patients:
            raise discover.nothing_found(root, self.name, "3Dircadb1/3Dircadb1.1/PATIENT_DICOM.zip")
        cases = []
        for source_id in discover.sort_ids(patients):
            patient = patients[source_id]
            image, masks = stored(patient, IMAGE), stored(patient, MASKS)
            present = structure_names(masks) & set(STRUCTURES)
            if not present:
                raise InputError(f"{masks}: no mask of {', '.join(STRUCTURES)}")
            annotated = tuple(expand(c for name in present for c in STRUCTURES[name]))
            cases.append(Case(source_id, (image, masks), annotated, partial(read_case, patient)))
        return Found(cases)


SOURCE = Ircadb()
