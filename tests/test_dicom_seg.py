"""``--output-type dicom-seg``: one DICOM SEG per case, written by highdicom, read back by highdicom and pydicom."""
from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.sr.codedict import codes

from nnunet_clip.cli import main
from nnunet_clip.errors import InputError
from nnunet_clip.inference.cohort import case_outputs
from nnunet_clip.inference.dicom_seg import read_source_headers, write_dicom_seg
from nnunet_clip.inference.inputs import find_cases
from nnunet_clip.inference.outputs import file_name
from nnunet_clip.inference.segment_codes import CODES, PRIVATE_SCHEME
from nnunet_clip.taxonomy import CLASS_NAMES
from test_predict import FAST, tiny_case, write_dicom_series
from test_predict_cohort import options

REAL_SERIES = Path(__file__).resolve().parent / "data" / "example_ct_dicom"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


@pytest.fixture
def real_series(tmp_path) -> Path:
    """The real scanner series with the Study and Series Instance UIDs its anonymiser blanked put back;
    its SOP Instance UIDs stay blank in the data set (they are in each file's meta header)."""
    folder = tmp_path / "real" / "ct"
    folder.mkdir(parents=True)
    for file in REAL_SERIES.iterdir():
        dataset = pydicom.dcmread(file)
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1125.7", "1.2.826.0.1.3680043.2.1125.8"
        dataset.save_as(folder / file.name)
    return folder


def seg_frames(path: Path, reference: sitk.Image, names: list[str]) -> dict[str, np.ndarray]:
    """Each segment of a SEG as read by pydicom, placed by its frames' positions on ``reference``'s grid."""
    seg = pydicom.dcmread(path)
    pixels = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    masks = {name: np.zeros(reference.GetSize()[::-1], bool) for name in names}
    for frame, groups in zip(pixels, seg.PerFrameFunctionalGroupsSequence):
        name = names[groups.SegmentIdentificationSequence[0].ReferencedSegmentNumber - 1]
        position = [float(v) for v in groups.PlanePositionSequence[0].ImagePositionPatient]
        x, y, z = reference.TransformPhysicalPointToIndex(position)
        assert (x, y) == (0, 0) and np.allclose(reference.TransformIndexToPhysicalPoint((0, 0, z)), position)
        masks[name][z] = frame.astype(bool)
    return masks


def test_every_class_has_standard_codes_and_sides_are_modifiers():
    assert list(CODES) == list(CLASS_NAMES)
    assert all(c.type.scheme_designator == "SCT" and c.category.scheme_designator == "SCT" for c in CODES.values())
    assert (CODES["left kidney"].type, CODES["left kidney"].laterality) == (codes.SCT.Kidney, codes.SCT.Left)
    assert CODES["liver tumor"].category == codes.SCT.MorphologicallyAbnormalStructure
    assert CODES["liver tumor"].regions == (codes.SCT.Liver,)


def test_real_series_seg_references_the_series_and_holds_each_mask_on_its_slices(real_series, tmp_path):
    case = find_cases(real_series.parent)[0]
    image = case.read()
    hu = sitk.GetArrayFromImage(image)
    right = np.zeros(hu.shape, bool)
    right[1:3, 200:300, 100:250] = True  # two of the five slices: the slice order matters
    masks = {"liver": hu > 0, "right kidney": right, "liver tumor": (hu > 0) & right,
             "gallstone": np.zeros(hu.shape, bool)}
    path = tmp_path / "ct.dcm"
    write_dicom_seg(masks, case.files, path, "Dataset300_Universal")

    source = [pydicom.dcmread(f, stop_before_pixels=True) for f in case.files]
    uids = [s.file_meta.MediaStorageSOPInstanceUID for s in source]
    seg = hd.seg.segread(path)
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.StudyInstanceUID == source[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source[0].SeriesInstanceUID
    assert sorted(i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence) \
        == sorted(uids)
    read = seg.get_pixels_by_source_instance(uids, segment_numbers=[1, 2, 3, 4]).astype(bool)
    for k, (name, mask) in enumerate(masks.items()):
        assert np.array_equal(read[..., k], mask), name
        assert seg.get_segment_description(k + 1).segment_label == name
    for name, mask in seg_frames(path, image, list(masks)).items():  # pydicom, placed by position
        assert np.array_equal(mask, masks[name]), name

    segments = pydicom.dcmread(path, stop_before_pixels=True).SegmentSequence
    kidney = segments[1].SegmentedPropertyTypeCodeSequence[0]
    assert (kidney.CodeValue, kidney.CodingSchemeDesignator) == (codes.SCT.Kidney.value, "SCT")
    assert kidney.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == codes.SCT.Right.value
    assert segments[2].AnatomicRegionSequence[0].CodeValue == codes.SCT.Liver.value
    prompt = segments[3].SegmentedPropertyTypeCodeSequence[0]
    assert (prompt.CodingSchemeDesignator, prompt.CodeMeaning) == (PRIVATE_SCHEME, "gallstone")


def test_series_without_the_uids_a_seg_references_is_a_one_line_error():
    files = find_cases(REAL_SERIES)[0].files  # as its anonymiser left it: Study and Series Instance UID blank
    with pytest.raises(InputError, match="no StudyInstanceUID, SeriesInstanceUID") as error:
        read_source_headers(files)
    assert len(str(error.value).splitlines()) == 1


def test_predict_writes_a_seg_equal_to_the_nifti_masks_of_each_series(trained_model, real_series, tmp_path):
    inputs = real_series.parent
    write_dicom_series(sitk.ReadImage(str(tiny_case(trained_model, "liversrc_001"))), inputs / "scan")
    classes = ["liver", "liver tumor", "spleen"]
    out = tmp_path / "out"
    assert main(["predict", "-m", str(trained_model.model_folder), "-i", str(inputs), "-o", str(out), *FAST,
                 "--step-size", "1", "--classes", *classes, "--output-type", "nifti", "dicom-seg"]) == 0
    for case in ("ct", "scan"):
        reference = sitk.ReadImage(str(out / f"{case}.nii.gz"))
        masks = seg_frames(out / f"{case}.dcm", reference, classes)
        for name in classes:
            nifti = sitk.GetArrayFromImage(sitk.ReadImage(str(out / case / file_name(name)))).astype(bool)
            assert np.array_equal(masks[name], nifti), (case, name)
    assert masks["liver"].any() and masks["spleen"].any()  # of the last case, the synthetic one

    only = tmp_path / "only_seg"
    assert main(["predict", "-m", str(trained_model.model_folder), "-i", str(inputs / "scan"), "-o", str(only),
                 *FAST, "--classes", *classes, "--output-type", "dicom-seg"]) == 0
    written = {p for p in only.rglob("*") if p.is_file()} - {only / "labels.json"}
    assert written == set(case_outputs(only, "scan", classes, options(probabilities=False, statistics=False,
                                                                       preview=False, output_type=["dicom-seg"])))


def test_dicom_seg_of_nifti_input_is_a_one_line_error(trained_model, tmp_path, capsys):
    assert main(["predict", "-m", str(trained_model.model_folder), "-i", str(tiny_case(trained_model)), "-o",
                 str(tmp_path), *FAST, "--output-type", "dicom-seg"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--output-type dicom-seg needs DICOM series as input" in error[0]
    assert "abdsrc_000_0000.nii.gz" in error[0] and not list(tmp_path.iterdir())
