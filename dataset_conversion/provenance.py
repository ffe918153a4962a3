"""``provenance.jsonl``: the record of a converted dataset, kept next to its dataset.json.

One JSON object per line, appended as ``convert`` goes, so a case is recorded in constant time
and a killed call loses at most the line it was writing:

- ``{"record": "labels", "labels": {...}, "added_classes": {...}}``: the label atoms and the
  classes outside the universal vocabulary, written when the dataset is created and whenever a
  call adds classes. The last one holds.
- ``{"record": "case", "case", "source", "id", "files", "annotated", "fingerprint"}``: a source
  case that became dataset case ``case``, once its image and label are in place.
- ``{"record": "duplicate", "case", "source", "id", "files", "annotated", "fingerprint",
  "conflicts"}``: a source case found to be the scan of dataset case ``case``, once its classes
  are merged into that case's label. ``conflicts``: ``{class, voxels, sources, kept}`` per class
  on which the copies disagree.

dataset.json is written from this record (``annotated_classes`` is the union over a case's lines);
``Provenance.load`` reads it back.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from nnunet_clip.errors import InputError

FILE_NAME = "provenance.jsonl"


class Provenance:
    """Everything ``provenance.jsonl`` records, by case, and the means to append to it."""

    def __init__(self, path: Path):
        self.path = path
        self.labels: dict | None = None
        self.added_classes: dict = {}
        self.sources: dict[str, list[dict]] = {}
        """Case -> the source cases it was made from: {source, id, files}, the first one kept."""
        self.annotated: dict[str, list[str]] = {}
        """Case -> the classes each of its source cases annotates, in the order they came."""
        self.fingerprints: dict[str, str] = {}
        self.conflicts: dict[str, list[dict]] = {}
        self.by_source: dict[tuple[str, str], str] = {}
        """(source, source id) -> dataset case."""
        self._tail_checked = False

    @classmethod
    def load(cls, folder: Path) -> "Provenance":
        """The record of the dataset in ``folder`` (empty if there is none yet). A last line cut off by a
        killed call is dropped; any other unreadable line is an error naming the file."""
        out = cls(folder / FILE_NAME)
        if not out.path.is_file():
            return out
        text = out.path.read_bytes().decode("utf-8", errors="replace")
        lines = text.split("\n")
        for number, line in enumerate(lines[:-1], start=1):
            try:
                out._apply(json.loads(line))
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{out.path}: line {number} cannot be read ({e})") from None
        return out

    def _apply(self, record: dict) -> None:
        kind = record["record"]
        if kind == "labels":
            self.labels, self.added_classes = record["labels"], record["added_classes"]
            return
        case = record["case"]
        if kind == "case":
            self.fingerprints[case] = record["fingerprint"]
            self.sources[case], self.annotated[case] = [], []
        elif kind != "duplicate":
            raise KeyError(f"record {kind!r}")
        self.sources[case].append({"source": record["source"], "id": record["id"], "files": record["files"]})
        self.annotated[case].extend(record["annotated"])
        if record.get("conflicts"):
            self.conflicts.setdefault(case, []).extend(record["conflicts"])
        self.by_source[(record["source"], record["id"])] = case

    def append(self, record: dict) -> None:
        """Apply ``record`` and add it as a line, flushed to disk before returning."""
        self._apply(record)
        if not self._tail_checked:
            self._drop_cut_line()
            self._tail_checked = True
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _drop_cut_line(self) -> None:
        """Truncate a last line without its newline (left by a killed call), so the next line starts clean."""
        if not self.path.is_file():
            return
        with open(self.path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            f.truncate(f.read().rfind(b"\n") + 1)
