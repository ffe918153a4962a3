"""The universal nnU-Net raw dataset that every ``convert`` call adds one source's cases to.

``$nnUNet_raw/DatasetXXX_NAME/{imagesTr,labelsTr,dataset.json}``. dataset.json is the index:
a case is part of the dataset once it is listed there. Files are written under a temporary name
in their folder and renamed into place, dataset.json last (after each case), so an interrupted
call leaves listed cases complete; unlisted files it left behind are removed by the next call.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from dataset_conversion import duplicates
from dataset_conversion.labels import to_atoms
from dataset_conversion.source import Case
from nnunet_clip import taxonomy
from nnunet_clip.atomic import write_image
from nnunet_clip.errors import InputError

FILE_ENDING = ".nii.gz"
TMP_PREFIX = ".tmp-"
ORIENTATION = "LPS"
IMAGE_READER = "NibabelIOWithReorient"
"""nnU-Net's reader for the dataset (dataset.json ``overwrite_image_reader_writer``, carried into the plans):
it reorients every image to RAS when reading and back when writing, so training, validation and
``nnUNetv2_predict`` see the same anatomy whichever way a scan is stored."""
DUPLICATE_RULE = (
    "A scan found again (same voxels, any header/orientation/dtype) joins the case already in the "
    "dataset: annotated classes are united; the first copy keeps its image and its labels for the "
    "classes it annotates; the new copy adds the classes only it annotates where they fit. "
    "Disagreements are listed under 'conflicts'."
)


def raw_folder() -> Path:
    """``$nnUNet_raw``, which must be set."""
    value = os.environ.get("nnUNet_raw")
    if not value:
        raise InputError("nnUNet_raw: environment variable not set (export nnUNet_raw=/path/to/nnUNet_raw)")
    return Path(value)


def dataset_folder(dataset_id: int, name: str) -> Path:
    """The folder of dataset ``dataset_id``: the existing one whatever its name, else a new one."""
    if not 1 <= dataset_id <= 999:
        raise InputError(f"-d {dataset_id}: a dataset id is a number from 1 to 999")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise InputError(f"--name {name}: use letters, digits, '_' and '-' only")
    root = raw_folder()
    existing = sorted(root.glob(f"Dataset{dataset_id:03d}_*")) if root.is_dir() else []
    if len(existing) > 1:
        raise InputError(f"{root}: several folders for dataset {dataset_id}: "
                         + ", ".join(p.name for p in existing))
    return existing[0] if existing else root / f"Dataset{dataset_id:03d}_{name}"


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the dataset's lock file while converting: one ``convert`` call at a time per dataset."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".convert.lock", "a") as lock:
        try:
            import fcntl
        except ImportError:  # Windows: no locking
            yield
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{folder}: another nnunet-clip convert is writing this dataset") from None
        yield


def _atomic_image(image: sitk.Image, path: Path) -> None:
    write_image(image, path)  # checked complete: SimpleITK returns from a short write (a full disk)


def _canonical(image: sitk.Image, atoms: np.ndarray) -> tuple[sitk.Image, sitk.Image]:
    label = sitk.GetImageFromArray(atoms)
    label.CopyInformation(image)
    return sitk.DICOMOrient(image, ORIENTATION), sitk.DICOMOrient(label, ORIENTATION)


class RawDataset:
    """One universal raw dataset, opened for adding cases."""

    def __init__(self, folder: Path, sources: list[str]):
        self.folder = folder
        self.images = folder / "imagesTr"
        self.labels = folder / "labelsTr"
        self.json_path = folder / "dataset.json"
        if self.json_path.is_file():
            self.meta = self._load()
        else:
            labels, order = taxonomy.dataset_labels()
            self.meta = {
                "name": folder.name.split("_", 1)[1],
                "description": "CLIP-Driven Universal Model: partially labelled abdominal CT "
                               "datasets in one (nnunet-clip convert)",
                "channel_names": {"0": "CT"},
                "labels": labels,
                "regions_class_order": order,
                "numTraining": 0,
                "file_ending": FILE_ENDING,
                "overwrite_image_reader_writer": IMAGE_READER,
                "annotated_classes": {},
                "sources": {},
                "fingerprints": {},
                "conflicts": {},
                "duplicate_rule": DUPLICATE_RULE,
            }
        self.by_source = {(r["source"], r["id"]): case
                          for case, records in self.meta["sources"].items() for r in records}
        self.images.mkdir(parents=True, exist_ok=True)
        self.labels.mkdir(exist_ok=True)
        self._remove_unlisted(sources)
        if not self.json_path.is_file():
            self._save()

    def _load(self) -> dict:
        try:
            meta = json.loads(self.json_path.read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"{self.json_path}: cannot be read ({e})") from None
        keys = ("labels", "annotated_classes", "sources", "fingerprints", "conflicts")
        if not isinstance(meta, dict) or any(k not in meta for k in keys):
            raise InputError(f"{self.json_path}: not a dataset written by nnunet-clip convert; "
                             f"choose another dataset id")
        if meta["labels"] != taxonomy.dataset_labels()[0]:
            raise InputError(f"{self.json_path}: its labels are not the 32 universal classes")
        return meta

    def _remove_unlisted(self, sources: list[str]) -> None:
        for path in self.folder.glob(f"{TMP_PREFIX}*"):  # a dataset.json not yet renamed into place
            tqdm.write(f"removing {path}, left by an interrupted call")
            path.unlink()
        names = "|".join(map(re.escape, sources))
        for folder, suffix in ((self.images, f"_0000{FILE_ENDING}"), (self.labels, FILE_ENDING)):
            ours = re.compile(rf"((?:{names})_.+){re.escape(suffix)}")
            for path in folder.iterdir():
                m = ours.fullmatch(path.name)
                if path.name.startswith(TMP_PREFIX) or (m and m.group(1) not in self.meta["annotated_classes"]):
                    tqdm.write(f"removing {path}, left by an interrupted call")
                    path.unlink()

    def converted(self, source: str, source_id: str) -> str | None:
        """The dataset case holding ``source``'s case ``source_id``, if converted already."""
        return self.by_source.get((source, source_id))

    def _save(self) -> None:
        self.meta["numTraining"] = len(self.meta["annotated_classes"])
        tmp = self.json_path.with_name(f"{TMP_PREFIX}{os.getpid()}-dataset.json")
        try:
            tmp.write_text(json.dumps(self.meta, indent=1))
            os.replace(tmp, self.json_path)
        finally:
            tmp.unlink(missing_ok=True)

    def _duplicate_of(self, fingerprint: str, array: np.ndarray):
        for case, other in self.meta["fingerprints"].items():
            if duplicates.similar(fingerprint, other):
                existing = sitk.GetArrayFromImage(
                    sitk.ReadImage(str(self.images / f"{case}_0000{FILE_ENDING}")))
                transform = duplicates.alignment(array, existing)
                if transform is not None:
                    return case, transform
        return None

    def add(self, source: str, case: Case, input_dir: Path) -> tuple[str, bool]:
        """Convert one case; returns the dataset case id and whether it joined an existing case."""
        image, labelmap = case.read()
        image, label = _canonical(image, to_atoms(labelmap, image))
        array = sitk.GetArrayViewFromImage(image)
        record = {"source": source, "id": case.source_id,
                  "files": [str(f.relative_to(input_dir)) if f.is_relative_to(input_dir) else str(f)
                            for f in case.files]}
        fingerprint = duplicates.fingerprint(array)
        match = self._duplicate_of(fingerprint, array)
        if match:
            case_id, transform = match
            self._merge(case_id, duplicates.apply(sitk.GetArrayViewFromImage(label), transform),
                        case.annotated, record)
        else:
            case_id = f"{source}_{case.source_id}"
            _atomic_image(image, self.images / f"{case_id}_0000{FILE_ENDING}")
            _atomic_image(label, self.labels / f"{case_id}{FILE_ENDING}")
            self.meta["annotated_classes"][case_id] = taxonomy.sort_classes(case.annotated)
            self.meta["sources"][case_id] = [record]
            self.meta["fingerprints"][case_id] = fingerprint
        self.by_source[(source, case.source_id)] = case_id
        self._save()
        return case_id, match is not None

    def _merge(self, case_id: str, atoms: np.ndarray, annotated: tuple[str, ...], record: dict) -> None:
        path = self.labels / f"{case_id}{FILE_ENDING}"
        existing = sitk.ReadImage(str(path))
        old = sitk.GetArrayFromImage(existing)
        first = self.meta["sources"][case_id][0]
        annotated_first = self.meta["annotated_classes"][case_id]
        merged, conflicts = duplicates.merge_atoms(old, atoms, annotated_first, annotated)
        tqdm.write(f"{record['source']} {record['id']}: same scan as {case_id}; annotated classes united")
        for name, voxels in sorted(conflicts.items()):
            tqdm.write(f"conflict in {case_id}, {name}: {voxels} voxels differ between "
                       f"{first['source']} and {record['source']}; kept {first['source']}")
            self.meta["conflicts"].setdefault(case_id, []).append(
                {"class": name, "voxels": voxels, "sources": [first["source"], record["source"]],
                 "kept": first["source"]})
        if not np.array_equal(merged, old):
            out = sitk.GetImageFromArray(merged)
            out.CopyInformation(existing)
            _atomic_image(out, path)
        self.meta["annotated_classes"][case_id] = taxonomy.sort_classes([*annotated_first, *annotated])
        self.meta["sources"][case_id].append(record)
