"""The universal nnU-Net raw dataset that every ``convert`` call adds one source's cases to.

``$nnUNet_raw/DatasetXXX_NAME/{imagesTr,labelsTr,dataset.json,provenance.jsonl}``. The record
``provenance.jsonl`` (``dataset_conversion.provenance``) is the index: a case is part of the
dataset once it is recorded there. A case is added in two steps. ``stage_case`` (in any process)
reads it and writes its image and label into the dataset under temporary names. ``RawDataset.commit``
(in the converting process, in case order) looks its scan up in the duplicate index, then renames
the files into place, or merges the label into the case it duplicates, and records it.

dataset.json is an ordinary nnU-Net dataset.json plus ``annotated_classes`` (and ``added_classes``
where the dataset adds classes), written from the record once at the end of a call, and only if
it changed. A killed call leaves its recorded cases complete; the next call removes the files it
left unrecorded and writes the dataset.json.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from dataset_conversion import duplicates
from dataset_conversion.labels import AtomTable
from dataset_conversion.provenance import Provenance
from dataset_conversion.source import Case
from nnunet_clip import taxonomy
from nnunet_clip.atomic import write_checked, write_image
from nnunet_clip.errors import InputError
from nnunet_clip.vocabulary import DEFAULT, ClassInfo, Vocabulary

FILE_ENDING = ".nii.gz"
TMP_PREFIX = ".tmp-"
ORIENTATION = "LPS"
READER_WRITER = "NibabelIOWithReorient"
"""nnU-Net's reader for the dataset: it reorients every image to RAS on reading and back on
writing, so that nnU-Net's own commands see every scan in one orientation whatever its header."""


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


def _read_array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _canonical(image: sitk.Image, atoms: np.ndarray) -> tuple[sitk.Image, sitk.Image]:
    label = sitk.GetImageFromArray(atoms)
    label.CopyInformation(image)
    return sitk.DICOMOrient(image, ORIENTATION), sitk.DICOMOrient(label, ORIENTATION)


@dataclass(frozen=True)
class Staged:
    """A source case read and written into the dataset folder under temporary names, not yet part of it."""

    source: str
    source_id: str
    files: list[str]
    annotated: list[str]
    fingerprint: str
    thumbnails: dict[duplicates.Transform, np.ndarray]
    image: Path
    label: Path

    def discard(self) -> None:
        self.image.unlink(missing_ok=True)
        self.label.unlink(missing_ok=True)


def stage_case(case: Case, source: str, input_dir: Path, folder: Path, table: AtomTable) -> Staged:
    """Read ``case``, reorient it to LPS with its label as ``table``'s atoms, and write both into
    ``folder``'s imagesTr and labelsTr under temporary names."""
    image, labelmap = case.read()
    image, label = _canonical(image, table.to_atoms(labelmap, image))
    tag = f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{source}_{case.source_id}"
    array = sitk.GetArrayViewFromImage(image)
    staged = Staged(source, case.source_id,
                    [str(f.relative_to(input_dir)) if f.is_relative_to(input_dir) else str(f) for f in case.files],
                    list(case.annotated), duplicates.fingerprint(array), duplicates.thumbnails(array),
                    folder / "imagesTr" / f"{tag}_0000{FILE_ENDING}", folder / "labelsTr" / f"{tag}{FILE_ENDING}")
    try:
        write_checked(image, staged.image, folder / "imagesTr" / f"{source}_{case.source_id}_0000{FILE_ENDING}")
        write_checked(label, staged.label, folder / "labelsTr" / f"{source}_{case.source_id}{FILE_ENDING}")
    except BaseException:
        staged.discard()
        raise
    return staged


def extended_labels(labels: dict, vocabulary: Vocabulary) -> dict:
    """``labels`` with the atoms of ``vocabulary`` that it lacks appended as new values, so that the
    values of the label files already written keep their meaning."""
    table = taxonomy.atom_table(labels)
    known = set(table.values())
    out = {name: values if isinstance(values, int) else list(values) for name, values in labels.items()}
    value = max(table, default=0)
    for atom in taxonomy.label_atoms(vocabulary.names, vocabulary.parents):
        if atom not in known:
            value += 1
            for name in vocabulary.sort(atom):
                out.setdefault(name, []).append(value)
    return out


def regions_class_order(labels: dict, vocabulary: Vocabulary) -> list[int]:
    """The value each class of ``labels`` is exported as (``taxonomy.export_atom``)."""
    classes = taxonomy.region_class_names(labels)
    value = {atom: v for v, atom in taxonomy.atom_table(labels).items()}
    return [value[taxonomy.export_atom(c, classes, vocabulary.parents)] for c in classes]


def dataset_json_text(meta: dict) -> str:
    """dataset.json as text: a line per key, and per entry of a dict (a class of ``labels``, a case
    of ``annotated_classes``)."""
    def entry(key: str, value) -> str:
        if isinstance(value, dict) and value:
            items = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            return f" {json.dumps(key)}: {{\n{items}\n }}"
        return f" {json.dumps(key)}: {json.dumps(value)}"

    return "{\n" + ",\n".join(entry(k, v) for k, v in meta.items()) + "\n}\n"


class RawDataset:
    """One universal raw dataset, opened for adding cases (hold ``locked`` meanwhile)."""

    def __init__(self, folder: Path, sources: Iterable[str]):
        self.folder = folder
        self.images = folder / "imagesTr"
        self.labels = folder / "labelsTr"
        self.json_path = folder / "dataset.json"
        self.record = Provenance.load(folder)
        if self.record.labels is None:
            self._check_not_foreign()
            self.record.append({"record": "labels", "labels": DEFAULT.labels()[0], "added_classes": {}})
        self.vocabulary = Vocabulary.of_dataset({"added_classes": self.record.added_classes})
        self.table = AtomTable(self.record.labels, self.vocabulary)
        self.index = duplicates.DuplicateIndex()
        for case, fingerprint in self.record.fingerprints.items():
            self.index.add(case, fingerprint)
        self._thumbnails: dict[str, np.ndarray] = {}
        """Thumbnails of the cases met as candidates or added in this call."""
        self.images.mkdir(parents=True, exist_ok=True)
        self.labels.mkdir(exist_ok=True)
        recorded = {r["source"] for records in self.record.sources.values() for r in records}
        self._remove_unrecorded([*sources, *recorded])

    def _check_not_foreign(self) -> None:
        if not self.json_path.is_file():
            return
        try:
            meta = json.loads(self.json_path.read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"{self.json_path}: cannot be read ({e})") from None
        if isinstance(meta, dict) and "sources" in meta and "annotated_classes" in meta:
            raise InputError(f"{self.json_path}: written by an older nnunet-clip convert (provenance inside "
                             f"dataset.json, no {self.record.path.name}); convert into a new dataset id")
        raise InputError(f"{self.json_path}: not a dataset written by nnunet-clip convert; choose another dataset id")

    def _remove_unrecorded(self, sources: list[str]) -> None:
        for path in self.folder.glob(f"{TMP_PREFIX}*"):  # a dataset.json not yet renamed into place
            tqdm.write(f"removing {path}, left by an interrupted call")
            path.unlink()
        names = "|".join(map(re.escape, sources))
        for folder, suffix in ((self.images, f"_0000{FILE_ENDING}"), (self.labels, FILE_ENDING)):
            ours = re.compile(rf"((?:{names})_.+){re.escape(suffix)}")
            for path in folder.iterdir():
                m = ours.fullmatch(path.name)
                if path.name.startswith(TMP_PREFIX) or (m and m.group(1) not in self.record.sources):
                    tqdm.write(f"removing {path}, left by an interrupted call")
                    path.unlink()

    def add_classes(self, classes: Mapping[str, ClassInfo]) -> None:
        """Add the classes a source brings that the dataset lacks; each new one is reported once."""
        try:
            vocabulary = self.vocabulary.with_classes(classes)
        except ValueError as e:
            raise InputError(f"{self.json_path.parent}: {e}") from None
        new = [name for name in vocabulary.added if name not in self.vocabulary.added]
        if not new:
            return
        for name in new:
            info = vocabulary.added[name]
            about = "".join([f", inside {' or '.join(info.parents)}" if info.parents else "",
                             f", on the {info.side}" if info.side else ""])
            print(f"new class '{name}' (not one of the {len(taxonomy.CLASS_NAMES)} universal classes{about})")
        labels = extended_labels(self.record.labels, vocabulary)
        self.record.append({"record": "labels", "labels": labels, "added_classes": vocabulary.to_json()})
        self.vocabulary, self.table = vocabulary, AtomTable(labels, vocabulary)

    def converted(self, source: str, source_id: str) -> str | None:
        """The dataset case holding ``source``'s case ``source_id``, if converted already."""
        return self.record.by_source.get((source, source_id))

    def annotated(self, case_id: str) -> list[str]:
        """The classes case ``case_id`` annotates: the union over its source cases."""
        return self.vocabulary.sort(self.record.annotated[case_id])

    def _thumbnail(self, case: str) -> np.ndarray:
        if case not in self._thumbnails:
            self._thumbnails[case] = duplicates.thumbnail(_read_array(self.images / f"{case}_0000{FILE_ENDING}"))
        return self._thumbnails[case]

    def _duplicate_of(self, staged: Staged) -> tuple[str, duplicates.Transform] | None:
        """The stored case whose scan ``staged`` is, and the transform onto it: candidates from the index,
        compared by thumbnails, then voxel by voxel."""
        array = None
        for case in self.index.candidates(staged.fingerprint):
            transforms = duplicates.matching_transforms(staged.thumbnails, self._thumbnail(case))
            if transforms:
                array = _read_array(staged.image) if array is None else array
                transform = duplicates.alignment(array, _read_array(self.images / f"{case}_0000{FILE_ENDING}"),
                                                 transforms)
                if transform is not None:
                    return case, transform
        return None

    def commit(self, staged: Staged) -> tuple[str, bool]:
        """Add a staged case: its own case, or joined to the case it duplicates. Returns the dataset
        case id and whether it joined an existing case."""
        try:
            record = {"source": staged.source, "id": staged.source_id, "files": staged.files,
                      "annotated": self.vocabulary.sort(staged.annotated), "fingerprint": staged.fingerprint}
            match = self._duplicate_of(staged)
            if match:
                case_id, transform = match
                conflicts = self._merge(case_id, duplicates.apply(_read_array(staged.label), transform), record)
                self.record.append({"record": "duplicate", "case": case_id, **record, "conflicts": conflicts})
            else:
                case_id = f"{staged.source}_{staged.source_id}"
                os.replace(staged.image, self.images / f"{case_id}_0000{FILE_ENDING}")
                os.replace(staged.label, self.labels / f"{case_id}{FILE_ENDING}")
                self.record.append({"record": "case", "case": case_id, **record})
                self.index.add(case_id, staged.fingerprint)
                self._thumbnails[case_id] = staged.thumbnails[duplicates.TRANSFORMS[0]]
            return case_id, match is not None
        finally:
            staged.discard()

    def _merge(self, case_id: str, atoms: np.ndarray, record: dict) -> list[dict]:
        path = self.labels / f"{case_id}{FILE_ENDING}"
        existing = sitk.ReadImage(str(path))
        old = sitk.GetArrayFromImage(existing)
        first = self.record.sources[case_id][0]["source"]
        merged, conflicts = duplicates.merge_atoms(old, atoms, self.annotated(case_id), record["annotated"], self.table)
        tqdm.write(f"{record['source']} {record['id']}: same scan as {case_id}; annotated classes united")
        for name, voxels in sorted(conflicts.items()):
            tqdm.write(f"conflict in {case_id}, {name}: {voxels} voxels differ between "
                       f"{first} and {record['source']}; kept {first}")
        if not np.array_equal(merged, old):
            out = sitk.GetImageFromArray(merged)
            out.CopyInformation(existing)
            _atomic_image(out, path)
        return [{"class": name, "voxels": voxels, "sources": [first, record["source"]], "kept": first}
                for name, voxels in sorted(conflicts.items())]

    def save(self) -> None:
        """Write dataset.json from the record, if its content changed."""
        labels = self.record.labels
        meta = {
            "name": self.folder.name.split("_", 1)[1],
            "description": "Partially labelled CT datasets in one (nnunet-clip convert); the source of every "
                           f"case is recorded in {self.record.path.name}",
            "channel_names": {"0": "CT"},
            "labels": labels,
            "regions_class_order": regions_class_order(labels, self.vocabulary),
            "numTraining": len(self.record.sources),
            "file_ending": FILE_ENDING,
            "overwrite_image_reader_writer": READER_WRITER,
            **({"added_classes": self.vocabulary.to_json()} if self.vocabulary.added else {}),
            "annotated_classes": {case: self.annotated(case) for case in self.record.sources},
        }
        text = dataset_json_text(meta)
        if self.json_path.is_file() and self.json_path.read_text() == text:
            return
        tmp = self.json_path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-dataset.json")
        try:
            tmp.write_text(text)
            os.replace(tmp, self.json_path)
        finally:
            tmp.unlink(missing_ok=True)
