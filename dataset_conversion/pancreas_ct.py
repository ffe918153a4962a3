"""TCIA Pancreas-CT (NIH): DICOM series with NIfTI labels; Gibson's 8-organ labels where found.

Images: ``manifest-*/Pancreas-CT/PANCREAS_NNNN/<study>/<series>/1-NNN.dcm``. Labels:
``TCIA_pancreas_labels-02-05-2017/labelNNNN.nii.gz`` (1 pancreas), or Gibson's
``label_tcia_multiorgan/labelNNNN.nii.gz`` (BTCV numbering, 8 organs), preferred where present.
Labels are matched to the series by their headers (reoriented if their axes differ); a label
whose origin alone differs is taken to share the series' voxel grid, as DKFZ's conversion does.
"""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import SimpleITK as sitk

from dataset_conversion import discover, gibson, readers
from dataset_conversion.labels import LabelMap, classes_of, expand, value_table
from dataset_conversion.source import Case, Found, Options, Source
from nnunet_clip.errors import InputError

NIH = value_table({1: ("pancreas",)})
GIBSON = value_table(gibson.EIGHT_ORGANS)
NIH_FOLDER = r"TCIA_pancreas_labels[^/]*"


def series_folder(patient: Path) -> Path:
    """The folder below ``patient`` holding the most files (its CT series)."""
    best, most = None, 0
    for current, dirs, files in os.walk(patient):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        n = sum(not f.startswith(".") for f in files)
        if n > most:
            best, most = Path(current), n
    if best is None:
        raise InputError(f"{patient}: no DICOM files below this folder")
    return best


def read_case(patient: Path, label_path: Path, table) -> tuple[sitk.Image, LabelMap]:
    """The patient's series and its label."""
    series = series_folder(patient)
    image = readers.checked_ct(readers.read_dicom_series(series)[0], series)
    label = readers.aligned(readers.read_image(label_path), image, label_path, patient, origin_tolerant=True)
    codes = readers.label_codes(sitk.GetArrayViewFromImage(label), label_path, table, SOURCE.name)
    return image, LabelMap(codes, dict(table))


class PancreasCT(Source):
    name = "pancreas-ct"
    summary = "TCIA Pancreas-CT (DICOM), pancreas; Gibson's 8 organs if found"
    annotated = tuple(expand(classes_of(GIBSON)))

    def find(self, root: Path, options: Options) -> Found:
        patients = discover.match(root, discover.walk(root, 5, folders=True), r"Pancreas-CT/PANCREAS_(\d{4})")
        if not patients:
            raise discover.nothing_found(root, self.name, "manifest-*/Pancreas-CT/PANCREAS_0001/")
        nih = discover.match(root, discover.walk(root, 4), rf"{NIH_FOLDER}/label(\d{{4}})\.nii\.gz")
        multiorgan = gibson.find_labels(root, options, "label_tcia_multiorgan")
        cases = []
        for source_id in discover.sort_ids(patients):
            if source_id in multiorgan:
                label, table = multiorgan[source_id], GIBSON
            elif source_id in nih:
                label, table = nih[source_id], NIH
            else:
                raise InputError(f"{patients[source_id]}: missing its label "
                                 f"TCIA_pancreas_labels-02-05-2017/label{source_id}.nii.gz")
            annotated = tuple(expand(c for names in table.values() for c in names))
            cases.append(Case(source_id, (patients[source_id], label), annotated,
                              partial(read_case, patients[source_id], label, table)))
        return Found(cases)


SOURCE = PancreasCT()
