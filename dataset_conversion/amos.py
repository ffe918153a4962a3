"""AMOS22 CT (Zenodo 7262581): ``amos22/{imagesTr,labelsTr,imagesVa,labelsVa}/amos_NNNN.nii.gz``.

Ids above 500 are MRI and skipped. Label 15 is the prostate in male patients and the uterus in
female ones; the metadata CSV (``labeled_data_meta*.csv`` in INPUT_DIR, beside it or below it, or
``--amos-meta``) gives the sex. Male: 15 is prostate. Female: 15 is background and prostate is
annotated (known to be absent). Sex unknown: 15 is background and prostate is not annotated.
"""
from __future__ import annotations

import csv
import re
from dataclasses import replace
from functools import partial
from pathlib import Path

from dataset_conversion import discover
from dataset_conversion.labels import classes_of, expand, value_table
from dataset_conversion.source import Case, Found, Options, PairedSource, read_pair
from nnunet_clip.errors import InputError

LAST_CT_ID = 500
ORGANS = {1: ("spleen",), 2: ("right kidney",), 3: ("left kidney",), 4: ("gall bladder",),
          5: ("esophagus",), 6: ("liver",), 7: ("stomach",), 8: ("aorta",), 9: ("postcava",),
          10: ("pancreas",), 11: ("right adrenal gland",), 12: ("left adrenal gland",),
          13: ("duodenum",), 14: ("bladder",)}
MALE = value_table({**ORGANS, 15: ("prostate",)})
OTHER = value_table({**ORGANS, 15: ()})
META = r"labeled_data_meta[^/]*\.csv"


def meta_file(root: Path, options: Options) -> Path | None:
    """The AMOS metadata CSV: ``--amos-meta``, else found in, beside or below INPUT_DIR."""
    if options.amos_meta is not None:
        if not options.amos_meta.is_file():
            raise InputError(f"{options.amos_meta}: missing file (--amos-meta)")
        return options.amos_meta
    for place, depth in ((root, 3), (root.parent, 1)):
        found = [place / p for p in discover.walk(place, depth) if re.search(rf"(?:^|/){META}$", p)]
        if found:
            return sorted(found)[0]
    return None


def read_sexes(path: Path) -> dict[str, str]:
    """Case id (4 digits) -> "M" or "F", from the id and sex (or gender) columns of the CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot be read ({e})") from None
    columns = list(rows[0]) if rows else []
    id_column = next((c for c in columns if "id" in c.lower()), None)
    sex_column = next((c for c in columns if "sex" in c.lower() or "gender" in c.lower()), None)
    if id_column is None or sex_column is None:
        raise InputError(f"{path}: no patient id and sex columns (columns: {', '.join(columns)})")
    sexes = {}
    for row in rows:
        number = re.search(r"\d+", row[id_column] or "")
        sex = (row[sex_column] or "").strip().upper()[:1]
        if number and sex in ("M", "F"):
            sexes[f"{int(number.group()):04d}"] = sex
    return sexes


class Amos(PairedSource):
    """AMOS CT cases, prostate by the patient's sex."""

    def include(self, source_id: str, options: Options) -> bool:
        return int(source_id) <= LAST_CT_ID

    def find(self, root: Path, options: Options) -> Found:
        path = meta_file(root, options)
        if path is None:
            print(f"{root}: no AMOS metadata CSV (labeled_data_meta*.csv) found; label 15 is "
                  f"treated as background and prostate as not annotated (give --amos-meta)")
        sexes = read_sexes(path) if path else {}
        found = super().find(root, options)
        return Found([self._by_sex(c, sexes.get(c.source_id)) for c in found.cases], found.skipped)

    def classes(self) -> tuple[str, ...]:
        return tuple(expand([*self.annotated, "prostate"]))

    def _by_sex(self, case: Case, sex: str | None) -> Case:
        if sex is None:
            return case
        image, label = case.files
        return replace(case, annotated=tuple(expand([*case.annotated, "prostate"])),
                       read=partial(read_pair, image, label, MALE if sex == "M" else OTHER, self.name))


SOURCE = Amos(
    name="amos22",
    summary="AMOS22 CT, 15 organs; label 15 is prostate for male patients only (metadata CSV)",
    image=r"images(?:Tr|Va)/amos_(\d{4})\.nii\.gz",
    label=r"labels(?:Tr|Va)/amos_(\d{4})\.nii\.gz",
    values=OTHER,
    annotated=classes_of(ORGANS),
    example="amos22/imagesTr/amos_0001.nii.gz",
)
