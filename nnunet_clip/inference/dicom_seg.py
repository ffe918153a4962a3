"""``--output-type dicom-seg``: one DICOM Segmentation (SEG) instance per case, written by highdicom.

The SEG belongs to the source's study, references every slice of the source series, and holds
one binary segment per requested class, in the order of ``--classes``: its label is the class
name, its codes those of ``segment_codes``. Segments may overlap as the per-class masks do (a
liver tumour voxel is also liver). Frames without any voxel of a segment are left out, as
highdicom does by default. Each mask frame is the slice of the source file at the same position
in the series, as SimpleITK read them, so the SEG lies on the source's own grid.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

import numpy as np

from nnunet_clip.errors import InputError
from nnunet_clip.inference.outputs import atomic_path
from nnunet_clip.inference.segment_codes import segment_coding

SERIES_NUMBER = 9000
"""Series number of the SEG series: high, so that it sorts after the scanner's series in a viewer."""
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
"""What a SEG references its source by, besides each slice's SOP Instance UID."""


def require_dicom_input(cases: Sequence) -> None:
    """InputError unless every case is a DICOM series: a SEG references its source series."""
    other = [Path(case.files[0]).name for case in cases if not case.dicom]
    if other:
        raise InputError(f"--output-type dicom-seg needs DICOM series as input (a DICOM SEG references its "
                         f"source series); not DICOM: {', '.join(other[:5])}{' ...' if len(other) > 5 else ''}")


def _import_highdicom():
    try:
        import highdicom
    except ImportError as e:
        raise InputError("--output-type dicom-seg needs highdicom: pip install 'nnunet-clip[dicom]'") from e
    return highdicom


def read_source_headers(files: Sequence[str]) -> list:
    """The headers (no pixel data) of the series' files, in the given order.

    An empty SOP Class or Instance UID (some anonymisers blank them) is taken from the file's meta
    header, which holds the same UIDs. InputError if the series lacks what a SEG must reference.
    """
    import pydicom

    headers = []
    for file in files:
        header = pydicom.dcmread(file, stop_before_pixels=True)
        meta = header.file_meta
        header.SOPClassUID = header.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID", "")
        header.SOPInstanceUID = header.get("SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID", "")
        headers.append(header)
    missing = [uid for uid in ("SOPInstanceUID", *REQUIRED_UIDS) if not all(h.get(uid) for h in headers)]
    if missing:
        raise InputError(f"{Path(files[0]).parent}: the series has no {', '.join(missing)} (blanked by an anonymiser, "
                         f"or never written by the program that made it); a DICOM SEG references its source by them")
    return headers


def _software_version() -> str:
    try:
        return version("nnunet-clip")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def _segment_description(hd, number: int, name: str, algorithm):
    coding = segment_coding(name)
    description = hd.seg.SegmentDescription(
        segment_number=number, segment_label=name[:64], segmented_property_category=coding.category,
        segmented_property_type=coding.type, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, anatomic_regions=coding.regions or None,
        primary_anatomic_structures=coding.structures or None)
    if coding.laterality is not None:
        modifier = hd.sr.CodedConcept(coding.laterality.value, coding.laterality.scheme_designator,
                                      coding.laterality.meaning)
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [modifier]
    return description


def write_dicom_seg(masks: dict[str, np.ndarray], files: Sequence[str], path: Path, model: str) -> None:
    """One SEG of ``masks`` (class -> (z, y, x) bool, z in the order of ``files``) referencing ``files``.

    ``model``: the model's name, recorded as the algorithm's parameter.
    """
    hd = _import_highdicom()
    from pydicom.sr.codedict import codes

    headers = read_source_headers(files)
    algorithm = hd.AlgorithmIdentificationSequence(name="nnunet-clip", version=_software_version(),
                                                   family=codes.cid7162.ArtificialIntelligence,
                                                   parameters={"model": model})
    descriptions = [_segment_description(hd, k + 1, name, algorithm) for k, name in enumerate(masks)]
    stacked = np.stack(list(masks.values())).transpose(1, 2, 3, 0)  # (z, y, x, segment), one copy
    seg = hd.seg.Segmentation(
        source_images=headers, pixel_array=stacked, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=SERIES_NUMBER,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="nnunet-clip",
        manufacturer_model_name="CLIP-Driven Universal Model", software_versions=_software_version(),
        device_serial_number="none", series_description="nnunet-clip segmentation")
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
