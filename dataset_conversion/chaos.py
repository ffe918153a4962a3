"""CHAOS, CT part (Zenodo 3431873): ``Train_Sets/CT/<pid>/DICOM_anon/iNNNN,0000b.dcm`` and
``Ground/liver_GT_NNN.png`` (0 background, 255 liver; 0/1 accepted too).

Slices are ordered by ImagePositionPatient; each PNG is paired with the DICOM file of the same
number, wherever that file falls in the order. The MR part and the unlabelled test set are skipped.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from dataset_conversion import discover, readers
from dataset_conversion.labels import LabelMap
from dataset_conversion.source import Case, Found, Options, Source
from nnunet_clip.errors import InputError

PNG = re.compile(r"liver_GT_(\d+)\.png")


def _number(path: Path) -> int:
    m = re.search(r"\d+", path.name)
    if not m:
        raise InputError(f"{path}: no slice number in the file name")
    return int(m.group())


def read_case(patient: Path) -> tuple[sitk.Image, LabelMap]:
    """The patient's DICOM series and its PNG liver masks as one volume."""
    image, files = readers.read_dicom_series(patient / "DICOM_anon")
    image = readers.checked_ct(image, patient / "DICOM_anon")
    ground = patient / "Ground"
    pngs = {int(m.group(1)): ground / m.group(0)
            for m in map(PNG.fullmatch, sorted(p.name for p in ground.iterdir())) if m}
    numbers = [_number(f) for f in files]
    if len(set(numbers)) != len(numbers):
        raise InputError(f"{patient / 'DICOM_anon'}: two DICOM files share one slice number")
    extra = sorted(set(pngs) - set(numbers))
    if extra:
        raise InputError(f"{pngs[extra[0]]}: no DICOM slice with this number")
    mask = np.zeros(sitk.GetArrayViewFromImage(image).shape, bool)
    for z, number in enumerate(numbers):
        if number not in pngs:
            raise InputError(f"{ground}: missing liver_GT_{number:03d}.png for {files[z].name}")
        png = readers.read_png(pngs[number])
        if png.shape != mask.shape[1:]:
            raise InputError(f"{pngs[number]}: size {png.shape[::-1]} does not match the DICOM slice "
                             f"{mask.shape[:0:-1]}")
        mask[z] = readers.label_codes(png, pngs[number], (1, 255), "chaos") > 0
    return image, LabelMap(mask.astype(np.uint8), {1: ("liver",)})


class Chaos(Source):
    name = "chaos"
    summary = "CHAOS CT training set (DICOM + PNG masks), liver"
    annotated = ("liver",)

    def find(self, root: Path, options: Options) -> Found:
        folders = discover.walk(root, 5, folders=True)
        with_ground = [f for f in folders if (root / f / "Ground").is_dir()]
        labelled = discover.match(root, with_ground, r"CT/(\d+)")
        if not labelled:
            raise discover.nothing_found(root, self.name, "Train_Sets/CT/1/DICOM_anon/ and Ground/")
        cases = [Case(i, (labelled[i],), self.annotated, partial(read_case, labelled[i]))
                 for i in discover.sort_ids(labelled)]
        unlabelled = [f for f in folders if f not in with_ground and (root / f / "DICOM_anon").is_dir()]
        return Found(cases, len(unlabelled))


SOURCE = Chaos()
