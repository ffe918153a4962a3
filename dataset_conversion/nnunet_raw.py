"""Any nnU-Net raw dataset: ``DatasetXXX_Name/{dataset.json, imagesTr/<case>_0000<ending>, labelsTr/<case><ending>}``.

Class names come from dataset.json ``labels`` (``dataset_conversion.class_names``: renames,
aliases, added classes); every case annotates all of them, unless dataset.json says otherwise in
``annotated_classes`` (a dataset written by ``convert``, or any partially labelled one). With integer labels each value is one
class; a value whose class is declared inside another class of the dataset (``--parent``) stands
for both, since an integer label map can show only one. With regions (lists of values) a value
stands for every class whose region holds it, and a class the dataset adds lies inside the
smallest other region that holds its own. Only single-channel datasets (CT) are read, and an
``ignore`` label is refused: the universal dataset has no place for voxels of unknown class.
"""
from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

from dataset_conversion import discover
from dataset_conversion.class_names import added_classes, check_renames, renamed, source_name
from dataset_conversion.labels import AtomTable
from dataset_conversion.source import Case, Found, Options, Source, read_pair
from nnunet_clip.errors import InputError
from nnunet_clip.vocabulary import ANNOTATED_KEY, DEFAULT, Vocabulary


def read_dataset_json(root: Path) -> dict:
    path = root / "dataset.json"
    if not path.is_file():
        raise InputError(f"{root}: no dataset.json (expected an nnU-Net raw dataset folder, DatasetXXX_Name)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot be read ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("labels"), dict):
        raise InputError(f"{path}: no 'labels' dict")
    channels = meta.get("channel_names") or meta.get("modality") or {}
    if len(channels) != 1:
        raise InputError(f"{path}: {len(channels)} input channels; only single-channel (CT) datasets are converted")
    if "ignore" in meta["labels"]:
        raise InputError(f"{path}: has an 'ignore' label; the universal dataset cannot hold voxels of unknown class")
    return meta


def value_classes(labels: dict, options: Options, path: Path) -> tuple[dict[int, list[str]], dict[str, tuple[str, ...]]]:
    """Label value -> its classes (canonical names), and the parents the regions imply."""
    check_renames([n for n in labels if n != "background"], options, path)
    regions: dict[str, set[int]] = {}
    for raw, values in labels.items():
        if raw == "background":
            continue
        values = [values] if isinstance(values, int) else values
        if not isinstance(values, list) or not all(isinstance(v, int) and v > 0 for v in values):
            raise InputError(f"{path}: label {raw!r}: expected a positive label value or a list of them")
        name = renamed(raw, options)
        if name in regions:
            raise InputError(f"{path}: labels {raw!r} and another name one class, {name!r}")
        regions[name] = set(values)
    holding: dict[int, list[str]] = {}
    for name, values in regions.items():
        for v in values:
            holding.setdefault(v, []).append(name)
    implied = {}
    for name, values in regions.items():
        hosts = [h for h in regions if h != name and values < regions[h]]
        if hosts and name not in DEFAULT:
            implied[name] = (min(hosts, key=lambda h: len(regions[h])),)
    return holding, implied


def host(name: str, present: set[str], vocabulary: Vocabulary) -> str | None:
    """The class of ``present`` that ``name`` lies inside: its one parent there, or the unsided name of its
    two parents where they are a sided pair (a kidney tumour in "kidney", split by side later)."""
    parents = vocabulary.parents.get(name, ())
    inside = [p for p in parents if p in present]
    if len(inside) == 1:
        return inside[0]
    pair = next((base for base, sides in vocabulary.unsided().items() if set(sides) == set(parents)), None)
    return pair if pair is not None and (pair in present or set(parents) <= present) else None


def with_hosts(holding: dict[int, list[str]], vocabulary: Vocabulary) -> dict[int, list[str]]:
    """Integer labels: each value's class and the class it lies inside, where the dataset has that class
    (an integer label map shows one class per voxel)."""
    present = {c for names in holding.values() for c in names}
    return {v: [names[0], *filter(None, [host(names[0], present, vocabulary)])] for v, names in holding.items()}


class NnUNetRaw(Source):
    """An nnU-Net raw dataset, integer labels or regions."""

    name = "nnunet"
    summary = "any nnU-Net raw dataset (INPUT_DIR = DatasetXXX_Name), integer labels or regions; --rename OLD=NEW"
    annotated = ()

    def classes(self) -> tuple[str, ...]:
        return ("the classes of its dataset.json",)

    def find(self, root: Path, options: Options) -> Found:
        meta = read_dataset_json(root)
        path = root / "dataset.json"
        holding, implied = value_classes(meta["labels"], options, path)
        classes = added_classes({c for names in holding.values() for c in names}, options, implied)
        try:
            vocabulary = DEFAULT.with_classes(classes)
        except ValueError as e:
            raise InputError(f"{path}: {e}") from None
        table = AtomTable.of(vocabulary)
        if all(len(names) == 1 for names in holding.values()):
            holding = with_hosts(holding, vocabulary)
        try:
            values = table.value_table(holding)
        except ValueError as e:
            raise InputError(f"{path}: label value {e}; declare one inside the other with --parent CHILD=PARENT") from None
        annotated = tuple(table.expand(c for names in values.values() for c in names))
        ending = meta.get("file_ending", ".nii.gz")
        paths = discover.walk(root, 2)
        images = discover.match(root, paths, rf"imagesTr/(.+)_0000{re.escape(ending)}")
        labels = discover.match(root, paths, rf"labelsTr/(.+){re.escape(ending)}")
        for case, label in labels.items():
            if case not in images:
                raise InputError(f"{label}: missing the image of this label (expected {root}/imagesTr/{case}_0000{ending})")
        for case, image in images.items():
            if case not in labels:
                raise InputError(f"{image}: missing the label file of this image")
        if not images:
            raise discover.nothing_found(root, self.name, f"imagesTr/case_0000{ending}")
        name = source_name(root, options)
        given = meta.get(ANNOTATED_KEY)
        cases = []
        for case in discover.sort_ids(images):
            if given is not None and case not in given:
                raise InputError(f"{path}: case '{case}' is missing from '{ANNOTATED_KEY}'")
            own = annotated if given is None else tuple(table.expand(renamed(n, options) for n in given[case]))
            cases.append(Case(case, (images[case], labels[case]), own,
                              partial(read_pair, images[case], labels[case], values, name)))
        return Found(cases, 0, classes, name)


SOURCE = NnUNetRaw()
