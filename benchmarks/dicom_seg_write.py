"""Time and peak memory of writing one DICOM SEG (``--output-type dicom-seg``) of 32 classes.

The source: a synthetic CT series of ``--shape`` (z y x) header-only files (highdicom reads no
pixel data). The masks: one box per class, a fifth of the volume along each axis, fully
allocated (as the command holds them). Time: ``write_dicom_seg`` alone. Memory: the peak
resident set size of the process, and how much of it the masks are.

    python benchmarks/dicom_seg_write.py --shape 300 512 512
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def write_series(folder: Path, shape: tuple[int, int, int]) -> list[str]:
    """Header-only CT files of one series, 0.8 × 0.8 × 2.5 mm, in slice order."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    files = []
    for k in range(shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientID, ds.PatientName = "CT", "benchmark", "Benchmark^Phantom"
        for empty in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName",
                      "AccessionNumber", "StudyID"):  # type 2: present, may be empty
            setattr(ds, empty, "")
        ds.Rows, ds.Columns, ds.PixelSpacing, ds.SliceThickness = shape[1], shape[2], [0.8, 0.8], 2.5
        ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, 2.5 * k]
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated = 1, "MONOCHROME2", 16
        path = folder / f"{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(str(path))
    return files


def box_masks(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    from nnunet_clip.taxonomy import CLASS_NAMES

    rng = np.random.default_rng(0)
    masks = {}
    for name in CLASS_NAMES:
        mask = np.zeros(shape, bool)
        mask[...] = False  # touch every page, as a predicted mask is
        start = [rng.integers(0, s - s // 5) for s in shape]
        mask[tuple(slice(a, a + s // 5) for a, s in zip(start, shape))] = True
        masks[name] = mask
    return masks


def main() -> None:
    from nnunet_clip.inference.dicom_seg import write_dicom_seg

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(300, 512, 512), help="z y x")
    args = parser.parse_args()
    shape = tuple(args.shape)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_series(Path(tmp), shape)
        masks = box_masks(shape)
        start = time.perf_counter()
        write_dicom_seg(masks, files, Path(tmp) / "seg.dcm", "benchmark")
        seconds = time.perf_counter() - start
        size = (Path(tmp) / "seg.dcm").stat().st_size
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"{'x'.join(map(str, shape))}, {len(masks)} classes: {seconds:.1f} s, peak RSS {peak:.2f} GB "
          f"(the masks: {sum(m.nbytes for m in masks.values()) / 2 ** 30:.2f} GB), SEG file {size / 2 ** 20:.0f} MB")


if __name__ == "__main__":
    main()
