"""The official on-disk layouts of the source datasets: the inverse of ``dataset_conversion``.

``write_source(source, root, cases)`` writes CT images and per-class masks the way the source's
download has them (folder and file names, NIfTI / DICOM series / PNG slices / zip archives,
orientation on disk, dtype, label values, dataset-level files such as an MSD dataset.json or the
AMOS metadata CSV) and returns the INPUT_DIR to give ``nnunet-clip convert``. The converter tests
and the demo write their synthetic cases through it.

Masks of classes the source does not annotate are ignored; where the source is unsided (KiTS
kidneys, CT-ORG lungs and kidneys, WORD adrenal glands, ...) the right and left masks are united.
A structure inside a host (tumour, cyst, hepatic vessel) should lie inside the host's mask, as the
sources encode it so. ``SourceCase.meta`` options:

* ``"raw_values": {value: mask}``: label-map sources, extra source values painted last (CT-ORG
  bone 5, an AMOS uterus 15, a value the source does not define).
* ``"sex": "M" | "F"`` (amos22; label 15 is prostate for "M", else only from raw_values),
  ``"split": "Tr" | "Va"`` (amos22), ``"Tr" | "Val" | "Ts"`` (word; Ts labels go to ``labelsTs/``).
* ``"gibson": True`` (btcv, pancreas-ct): also write Gibson's relabelling of the case.
* ``"zipped": False`` (ircadb): unzipped PATIENT_DICOM / MASKS_DICOM folders (default: zips).
* ``"version": 1 | 2`` (totalsegmentator, default 2; v1 has no prostate and kidney-cyst files).
* ``"extra_files": {file name: mask}`` (totalsegmentator): further structure files, such as the
  ones outside the universal classes (``heart``, ``vertebrae_L1``).
* ``"no_image": True`` (abdomenatlas, per-class-files): the case's folder holds masks only.

Three layouts take their class names from the data: ``per-class-files`` (a file per mask of the
case, named as the mask), ``abdomenatlas`` (its 25 classes' files, for the masks the case has) and
``nnunet`` (an nnU-Net raw dataset with integer labels, a value per mask name).
"""
from __future__ import annotations

import csv
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from dataset_conversion import (abdomenct, amos, btcv, ct_org, ircadb, kits, lits, msd, pancreas_ct,
                                per_class_files, totalsegmentator, word)
from dataset_conversion.labels import UNSIDED
from nnunet_clip import taxonomy


@dataclass
class SourceCase:
    """One synthetic case: an int16 HU image (any direction) and bool masks in its array order (z, y, x)."""

    case_id: str | int
    image: sitk.Image
    masks: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------- masks to source values

_UNSIDED_OF = {side: organ for organ, pair in UNSIDED.items() for side in pair}


def _masks(case: SourceCase, vocabulary: set[str]) -> dict[str, np.ndarray]:
    """The case's masks in the source's vocabulary: canonical names, sides united where unsided."""
    shape = sitk.GetArrayViewFromImage(case.image).shape
    out: dict[str, np.ndarray] = {}
    for name, mask in case.masks.items():
        mask = np.asarray(mask, bool)
        if mask.shape != shape:
            raise ValueError(f"case {case.case_id}: mask {name!r} has shape {mask.shape}, image {shape}")
        c = taxonomy.canonical_name(name)
        c = c if c in vocabulary else _UNSIDED_OF.get(c)
        if c in vocabulary:
            out[c] = out[c] | mask if c in out else mask
    return out


def _key(classes: Sequence[str]) -> str:
    """The class that marks a value: the hosted structure of a pair, else the only class."""
    return next((c for c in classes if c in taxonomy.PARENTS), classes[0]) if len(classes) > 1 else classes[0]


def label_array(case: SourceCase, table: Mapping[int, Sequence[str]], dtype=np.uint8) -> np.ndarray:
    """Source label values: each value painted where its marking class is, organs before the
    structures they host, then ``meta["raw_values"]``."""
    vocabulary = {c for names in table.values() for c in names}
    masks = _masks(case, vocabulary)
    out = np.zeros(sitk.GetArrayViewFromImage(case.image).shape, dtype)
    for value, names in sorted(table.items(), key=lambda kv: (len(kv[1]), kv[0])):
        if names and _key(names) in masks:
            out[masks[_key(names)]] = value
    for value, mask in case.meta.get("raw_values", {}).items():
        out[np.asarray(mask, bool)] = value
    return out


# ---------------------------------------------------------------- file writers

def _number(case: SourceCase) -> int:
    return case.case_id if isinstance(case.case_id, int) else int(re.sub(r"\D", "", str(case.case_id)))


def _like(array: np.ndarray, image: sitk.Image) -> sitk.Image:
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    return out


def _write(image: sitk.Image, path: Path, orientation: str | None = None, dtype=None) -> None:
    if orientation:
        image = sitk.DICOMOrient(image, orientation)
    if dtype is not None:
        image = _like(sitk.GetArrayFromImage(image).astype(dtype), image)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)


def _pair(case: SourceCase, table, image_path: Path, label_path: Path, orientation: str | None = None,
          label_dtype=np.uint8, image_dtype=None) -> None:
    """Image file + label-map file of one case."""
    _write(case.image, image_path, orientation, image_dtype)
    _write(_like(label_array(case, table, label_dtype), case.image), label_path, orientation)


_UID = "1.2.826.0.1.3680043.2.1125.{}"


def _dicom_series(image: sitk.Image, folder: Path, name: Callable[[int, int], str], uid: int,
                  one_uid_per_file: bool = False) -> None:
    """An axial DICOM series (LPS), one file per slice; ``name(k, depth)`` names slice ``k``
    (k grows toward the head)."""
    image = sitk.DICOMOrient(image, "LPS")
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.SetImageIO("GDCMImageIO")
    writer.KeepOriginalImageUIDOn()
    d = image.GetDirection()
    depth = image.GetDepth()
    for k in range(depth):
        s = image[:, :, k]
        tags = {
            "0008|0060": "CT", "0008|0008": "ORIGINAL\\PRIMARY\\AXIAL", "0010|0020": str(uid),
            "0020|000d": _UID.format(uid), "0020|000e": _UID.format(f"{uid}.{k if one_uid_per_file else 0}.1"),
            "0008|0018": _UID.format(f"{uid}.{k}.2"), "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.4f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0037": "\\".join(f"{v:.6f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
            "0018|0050": f"{image.GetSpacing()[2]:.4f}",
        }
        for tag, value in tags.items():
            s.SetMetaData(tag, value)
        writer.SetFileName(str(folder / name(k, depth)))
        writer.Execute(s)


def _mask_image(mask: np.ndarray, image: sitk.Image) -> sitk.Image:
    return _like(np.where(mask, 255, 0).astype(np.uint8), image)


def _zip_folder(folder: Path) -> None:
    """Replace ``folder`` by ``folder.zip`` holding ``<folder name>/...``."""
    with zipfile.ZipFile(folder.with_name(folder.name + ".zip"), "w") as z:
        for p in sorted(folder.rglob("*")):
            z.write(p, p.relative_to(folder.parent).as_posix())
    for p in sorted(folder.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    folder.rmdir()


# ---------------------------------------------------------------- the sources

def _btcv(root: Path, cases: Sequence[SourceCase]) -> Path:
    for case in cases:
        n = _number(case)
        split = "Training" if n < btcv.FIRST_TEST_ID else "Testing"
        _write(case.image, root / f"RawData/{split}/img/img{n:04d}.nii.gz")
        if split == "Training":
            _write(_like(label_array(case, btcv.SOURCE.values), case.image),
                   root / f"RawData/Training/label/label{n:04d}.nii.gz")
        if case.meta.get("gibson"):
            table = btcv.GIBSON_ALL if split == "Training" else btcv.GIBSON_TEST
            _write(_like(label_array(case, table), case.image), root / f"label_btcv_multiorgan/label{n:04d}.nii.gz")
    return root


def _pancreas_ct(root: Path, cases: Sequence[SourceCase]) -> Path:
    for case in cases:
        n = _number(case)
        series = (root / f"manifest-1599750808610/Pancreas-CT/PANCREAS_{n:04d}"
                  / f"11-24-2015-PANCREAS{n:04d}-Pancreas-{18900 + n}" / f"Pancreas-{99600 + n}")
        _dicom_series(case.image, series, lambda k, depth: f"1-{depth - k:03d}.dcm", 1000 + n)
        label = _like(label_array(case, pancreas_ct.NIH), case.image)
        _write(label, root / f"TCIA_pancreas_labels-02-05-2017/label{n:04d}.nii.gz", "RAS")
        if case.meta.get("gibson"):
            label = _like(label_array(case, pancreas_ct.GIBSON), case.image)
            _write(label, root / f"label_tcia_multiorgan/label{n:04d}.nii.gz", "RAS")
    (root / "manifest-1599750808610/metadata.csv").write_text("Series UID,Collection\n")
    return root


def _chaos(root: Path, cases: Sequence[SourceCase]) -> Path:
    for case in cases:
        n = _number(case)
        patient = root / f"Train_Sets/CT/{n}"
        # file number 0 is the top slice (file order is not ascending z); UIDs differ per file
        _dicom_series(case.image, patient / "DICOM_anon", lambda k, depth: f"i{depth - 1 - k:04d},0000b.dcm",
                      2000 + n, one_uid_per_file=True)
        liver = _like(label_array(case, {1: ("liver",)}), case.image)
        liver = sitk.GetArrayFromImage(sitk.DICOMOrient(liver, "LPS"))
        (patient / "Ground").mkdir(parents=True, exist_ok=True)
        depth = liver.shape[0]
        for k in range(depth):
            png = sitk.GetImageFromArray(np.where(liver[k] > 0, 255, 0).astype(np.uint8))
            sitk.WriteImage(png, str(patient / f"Ground/liver_GT_{depth - 1 - k:03d}.png"))
    return root


def _identity_header(image: sitk.Image) -> sitk.Image:
    """The image on an identity NIfTI affine (spacing 1, origin 0), as LiTS volumes 28-47."""
    image = sitk.Image(sitk.DICOMOrient(image, "LPS"))
    image.SetSpacing((1.0, 1.0, 1.0))
    image.SetOrigin((0.0, 0.0, 0.0))
    image.SetDirection((-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    return image


def _lits(root: Path, cases: Sequence[SourceCase]) -> Path:
    for case in cases:
        n = _number(case)
        folder = root / ("Training Batch 1" if n <= 27 else "Training Batch 2")
        image, label = case.image, _like(label_array(case, lits.SOURCE.values), case.image)
        if 28 <= n <= 47:
            image, label = _identity_header(image), _identity_header(label)
        _write(image, folder / f"volume-{n}.nii")
        _write(label, folder / f"segmentation-{n}.nii")
    return root


def _kits(version: int) -> Callable[[Path, Sequence[SourceCase]], Path]:
    def write(root: Path, cases: Sequence[SourceCase]) -> Path:
        repo = root / f"kits{version}"
        data = {19: repo / "data", 21: repo / "kits21/data", 23: repo / "dataset"}[version]
        table = kits.KIDNEY_TUMOUR if version == 19 else kits.KIDNEY_TUMOUR_CYST
        for case in cases:
            folder = data / f"case_{_number(case):05d}"
            label = label_array(case, table)
            _write(case.image, folder / "imaging.nii.gz", "IPL")
            kidney = _like((label == 1).astype(np.uint8), case.image)
            if version == 21:
                union = label.copy()
                union[(label == 0) & ndimage.binary_dilation(label > 0)] = 1
                for code, array in (("MAJ", label), ("AND", label), ("OR", union)):
                    _write(_like(array, case.image), folder / f"aggregated_{code}_seg.nii.gz", "IPL")
                _write(kidney, folder / "segmentations/kidney_instance-1_annotation-1.nii.gz", "IPL")
            else:
                _write(_like(label, case.image), folder / "segmentation.nii.gz", "IPL")
                if version == 23:
                    _write(kidney, folder / "instances/kidney_instance-1_annotation-1.nii.gz", "IPL")
        index = [{"case_id": f"case_{_number(c):05d}"} for c in cases]
        (data / {19: "kits.json", 21: "kits.json", 23: "kits23.json"}[version]).write_text(json.dumps(index))
        return repo

    return write


def _ircadb(root: Path, cases: Sequence[SourceCase]) -> Path:
    folders = {classes[0]: name for name, classes in ircadb.STRUCTURES.items()}
    for case in cases:
        n = _number(case)
        patient = root / f"3Dircadb1/3Dircadb1.{n}"
        _dicom_series(case.image, patient / "PATIENT_DICOM", lambda k, depth: f"image_{k}", 3000 + n)
        for name, mask in _masks(case, set(folders)).items():
            _dicom_series(_mask_image(mask, case.image), patient / f"MASKS_DICOM/{folders[name]}",
                          lambda k, depth: f"image_{k}", 3000 + n)
        if case.meta.get("zipped", True):
            _zip_folder(patient / "PATIENT_DICOM")
            _zip_folder(patient / "MASKS_DICOM")
    return root


def _word(root: Path, cases: Sequence[SourceCase]) -> Path:
    for case in cases:
        n = _number(case)
        split = case.meta.get("split", "Tr")
        labels = root / "labelsTs" if split == "Ts" else root / f"WORD-V0.1.0/labels{split}"
        _pair(case, word.SOURCE.values, root / f"WORD-V0.1.0/images{split}/word_{n:04d}.nii.gz",
              labels / f"word_{n:04d}.nii.gz", "LPS", np.uint16 if n in (74, 129) else np.uint8)
    return root


def _abdomenct_1k(root: Path, cases: Sequence[SourceCase]) -> Path:
    for case in cases:
        n = _number(case)
        part = min(3, 1 + (n - 1) // 400)
        _pair(case, abdomenct.ABDOMENCT_1K.values, root / f"AbdomenCT-1K-ImagePart{part}/Case_{n:05d}_0000.nii.gz",
              root / f"Mask/Case_{n:05d}.nii.gz")
    return root


def _numbered_pairs(source, image: str, label: str) -> Callable[[Path, Sequence[SourceCase]], Path]:
    """Writer of a source storing case n as the image and label paths ``image``/``label`` formatted with n."""
    def write(root: Path, cases: Sequence[SourceCase]) -> Path:
        for case in cases:
            n = _number(case)
            _pair(case, source.values, root / image.format(n=n), root / label.format(n=n))
        return root
    return write


_abdomenct_12organ = _numbered_pairs(abdomenct.ABDOMENCT_12ORGAN, "Organ-12-Subset/Image/Organ12_{n:04d}_0000.nii.gz",
                                     "Organ-12-Subset/Mask/Organ12_{n:04d}.nii.gz")
_flare22 = _numbered_pairs(abdomenct.FLARE22, "FLARE22Train/images/FLARE22_Tr_{n:04d}_0000.nii.gz",
                           "FLARE22Train/labels/FLARE22_Tr_{n:04d}.nii.gz")


_AMOS_LABELS = {"0": "background", "1": "spleen", "2": "right kidney", "3": "left kidney", "4": "gall bladder",
                "5": "esophagus", "6": "liver", "7": "stomach", "8": "arota", "9": "postcava",
                "10": "pancreas", "11": "right adrenal gland", "12": "left adrenal gland", "13": "duodenum",
                "14": "bladder", "15": "prostate/uterus"}


def _amos22(root: Path, cases: Sequence[SourceCase]) -> Path:
    rows = []
    for case in cases:
        n = _number(case)
        split = case.meta.get("split", "Tr")
        sex = case.meta.get("sex", "")
        _pair(case, amos.MALE if sex == "M" else amos.OTHER, root / f"amos22/images{split}/amos_{n:04d}.nii.gz",
              root / f"amos22/labels{split}/amos_{n:04d}.nii.gz")
        rows.append({"amos_id": n, "Patient's Sex": sex, "Patient's Age": "060Y",
                     "Manufacturer's Model Name": "Synthetic"})
    (root / "amos22/dataset.json").write_text(json.dumps({
        "name": "AMOS", "licence": "CC BY 4.0", "modality": {"0": "CT"}, "labels": _AMOS_LABELS,
        "numTraining": len(cases), "training": [], "validation": [], "test": []}, indent=1))
    with open(root / "labeled_data_meta_0000_0599.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["amos_id", "Patient's Sex"])
        writer.writeheader()
        writer.writerows(rows)
    return root


_MSD_LABEL_NAMES = {"Task03_Liver": ("liver", "cancer"), "Task06_Lung": ("cancer",),
                    "Task07_Pancreas": ("pancreas", "cancer"), "Task08_HepaticVessel": ("Vessel", "Tumour"),
                    "Task09_Spleen": ("spleen",), "Task10_Colon": ("colon cancer primaries",)}


def _msd(name: str) -> Callable[[Path, Sequence[SourceCase]], Path]:
    def write(root: Path, cases: Sequence[SourceCase]) -> Path:
        _, task, prefix, _, _ = next(t for t in msd.TASKS if t[0] == name)
        table = next(s for s in msd.SOURCES if s.name == name).values
        folder = root / task
        training = []
        for case in cases:
            n = _number(case)
            stem = f"{prefix}_{n}" if prefix in ("liver", "spleen") else f"{prefix}_{n:03d}"
            _pair(case, table, folder / f"imagesTr/{stem}.nii.gz", folder / f"labelsTr/{stem}.nii.gz")
            for sub in ("imagesTr", "labelsTr"):  # macOS AppleDouble companions, as in the tarballs
                (folder / sub / f"._{stem}.nii.gz").write_bytes(b"\x00\x05\x16\x07" + bytes(160))
            training.append({"image": f"./imagesTr/{stem}.nii.gz", "label": f"./labelsTr/{stem}.nii.gz"})
        (folder / "imagesTs").mkdir(exist_ok=True)
        labels = {"0": "background", **{str(i + 1): n for i, n in enumerate(_MSD_LABEL_NAMES[task])}}
        (folder / "dataset.json").write_text(json.dumps({
            "name": task.split("_", 1)[1], "tensorImageSize": "3D", "modality": {"0": "CT"},
            "labels": labels, "numTraining": len(cases), "numTest": 0, "training": training, "test": []},
            indent=1))
        return root

    return write


def _ct_org(root: Path, cases: Sequence[SourceCase]) -> Path:
    for case in cases:
        n = _number(case)
        _pair(case, ct_org.SOURCE.values, root / f"OrganSegmentations/volume-{n}.nii.gz",
              root / f"OrganSegmentations/labels-{n}.nii.gz", label_dtype=np.float32, image_dtype=np.float32)
    return root


_TS_UNMAPPED = {"femur_left": "left head of femur", "femur_right": "right head of femur",
                "heart": None, "trachea": None, "vertebrae_L1": None}
"""Further TotalSegmentator files the fixtures write (not converted)."""


def _totalsegmentator(root: Path, cases: Sequence[SourceCase]) -> Path:
    ts = totalsegmentator
    rows = []
    for case in cases:
        n = _number(case)
        subject = root / f"Totalsegmentator_dataset/s{n:04d}"
        _write(case.image, subject / "ct.nii.gz")
        masks = _masks(case, set(taxonomy.CLASS_NAMES))
        empty = np.zeros(sitk.GetArrayViewFromImage(case.image).shape, bool)
        cyst = masks.get("kidney cyst", empty)
        files: dict[str, np.ndarray] = {}
        for name, classes in ts.STRUCTURES.items():  # kidney files without their cysts (unverified)
            organ = masks.get(classes[-1], empty)
            files[name] = organ & cyst if classes[0] == "kidney cyst" else organ & ~cyst
        for side in ("right", "left"):  # the lung's voxels, in slabs, to the lobes
            lobes = [f for f in ts.STRUCTURES if f.startswith("lung_") and f.endswith(side)]
            index = np.flatnonzero(masks.get(f"{side} lung", empty))
            for lobe, part in zip(lobes, np.array_split(index, len(lobes))):
                files[lobe] = np.isin(np.arange(empty.size), part).reshape(empty.shape)
        files.update({f: masks.get(c, empty) if c else empty for f, c in _TS_UNMAPPED.items()})
        files.update(case.meta.get("extra_files", {}))
        if case.meta.get("version", 2) == 1:
            for name in ("prostate", "kidney_cyst_right", "kidney_cyst_left"):
                del files[name]
        for name, mask in sorted(files.items()):
            _write(_like(mask.astype(np.uint8), case.image), subject / f"segmentations/{name}.nii.gz")
        rows.append(f"s{n:04d};60;m;A;ct abdomen;train")
    (root / "Totalsegmentator_dataset/meta.csv").write_text(
        "image_id;age;gender;institute;study_type;split\n" + "\n".join(rows) + "\n")
    return root


def _mask_files(case: SourceCase, folder: Path, masks: Mapping[str, np.ndarray]) -> None:
    """``folder/ct.nii.gz`` (unless ``meta["no_image"]``) and ``folder/segmentations/<name>.nii.gz`` per mask."""
    if not case.meta.get("no_image"):
        _write(case.image, folder / "ct.nii.gz")
    for name, mask in masks.items():
        _write(_like(np.asarray(mask, np.uint8), case.image), folder / f"segmentations/{name}.nii.gz")


def _per_class_files(root: Path, cases: Sequence[SourceCase]) -> Path:
    for case in cases:
        _mask_files(case, root / str(case.case_id), {"_".join(n.split()): m for n, m in case.masks.items()})
    return root


def _abdomenatlas(root: Path, cases: Sequence[SourceCase]) -> Path:
    classes = {f: taxonomy.canonical_name(per_class_files.ABDOMENATLAS_RENAMES.get(f, f))
               for f in per_class_files.ABDOMENATLAS_FILES}
    for case in cases:
        masks = _masks(case, set(classes.values()))
        _mask_files(case, root / f"AbdomenAtlas1.1Mini/BDMAP_{_number(case):08d}",
                    {f: masks[c] for f, c in classes.items() if c in masks})
    return root


def _nnunet(root: Path, cases: Sequence[SourceCase]) -> Path:
    names = list(dict.fromkeys(n for case in cases for n in case.masks))
    folder = root / "Dataset900_Synthetic"
    for case in cases:
        label = np.zeros(sitk.GetArrayViewFromImage(case.image).shape, np.uint8)
        for value, name in enumerate(names, start=1):
            if name in case.masks:
                label[np.asarray(case.masks[name], bool)] = value
        _write(case.image, folder / f"imagesTr/{case.case_id}_0000.nii.gz")
        _write(_like(label, case.image), folder / f"labelsTr/{case.case_id}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"background": 0, **{n: v for v, n in enumerate(names, start=1)}},
        "numTraining": len(cases), "file_ending": ".nii.gz"}, indent=1))
    return folder


_WRITERS: dict[str, Callable[[Path, Sequence[SourceCase]], Path]] = {
    "btcv": _btcv, "pancreas-ct": _pancreas_ct, "chaos": _chaos, "lits": _lits,
    "kits19": _kits(19), "kits21": _kits(21), "kits23": _kits(23), "ircadb": _ircadb, "word": _word,
    "abdomenct-1k": _abdomenct_1k, "abdomenct-12organ": _abdomenct_12organ, "flare22": _flare22,
    "amos22": _amos22, "ct-org": _ct_org, "totalsegmentator": _totalsegmentator,
    "per-class-files": _per_class_files, "abdomenatlas": _abdomenatlas, "nnunet": _nnunet,
    **{name: _msd(name) for name in ("msd-liver", "msd-lung", "msd-pancreas", "msd-hepaticvessel",
                                     "msd-spleen", "msd-colon")},
}


# ---------------------------------------------------------------- other unpackings of one download

UNPACKINGS = ("as shipped", "top folder as INPUT_DIR", "in same-named folders, one level below",
              "top folders zipped", "zips unzipped", "zips unzipped into same-named folders")
"""How else users lay out the same files (``unpack_as``)."""


def _top_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _unzip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        z.extractall(into)
    archive.unlink()


def unpack_as(input_dir: Path, unpacking: str) -> Path:
    """Rearrange what ``write_source`` wrote below ``input_dir`` into another of ``UNPACKINGS``;
    returns the INPUT_DIR to give ``nnunet-clip convert`` then.

    * ``top folder as INPUT_DIR``: the only top-level folder (the archive's) is INPUT_DIR.
    * ``in same-named folders, one level below``: each top-level folder ``X`` moved to ``X/X`` (an
      archive unzipped into a folder named after it), all in a download folder inside INPUT_DIR.
    * ``top folders zipped``: each top-level folder ``X`` replaced by ``X.zip`` holding ``X/``.
    * ``zips unzipped`` / ``... into same-named folders``: every zip archive (3D-IRCADb's per
      patient) unzipped where it lies, or into a folder named after it.
    """
    input_dir = Path(input_dir)
    if unpacking == "as shipped":
        return input_dir
    if unpacking == "top folder as INPUT_DIR":
        (top,) = _top_folders(input_dir)
        return top
    if unpacking == "in same-named folders, one level below":
        download = input_dir / "download"
        download.mkdir()
        for entry in sorted(p for p in input_dir.iterdir() if p != download):
            target = download / entry.name / entry.name if entry.is_dir() else download / entry.name
            target.parent.mkdir(exist_ok=True)
            entry.rename(target)
        return input_dir
    if unpacking == "top folders zipped":
        for folder in _top_folders(input_dir):
            _zip_folder(folder)
        return input_dir
    if unpacking in ("zips unzipped", "zips unzipped into same-named folders"):
        for archive in sorted(input_dir.rglob("*.zip")):
            same_named = unpacking.endswith("same-named folders")
            _unzip(archive, archive.with_suffix("") if same_named else archive.parent)
        return input_dir
    raise ValueError(f"unknown unpacking {unpacking!r}; known: {', '.join(UNPACKINGS)}")


def write_source(source: str, root: Path, cases: Sequence[SourceCase]) -> Path:
    """Write ``cases`` in the official layout of ``source`` below ``root``; returns the INPUT_DIR."""
    if source not in _WRITERS:
        raise KeyError(f"unknown source {source!r}; known: {', '.join(_WRITERS)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return _WRITERS[source](root, cases)
