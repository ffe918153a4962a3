"""Conversion at scale: cases in parallel with the same result, dataset.json written once per call,
a killed call finished by the next one, duplicates found through an index."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from conversion import phantom
from conversion.assemble import snapshot
from dataset_conversion import duplicates
from dataset_conversion.convert import convert
from dataset_conversion.provenance import FILE_NAME, Provenance
from nnunet_clip.synthetic.layouts import write_source


def spleen_cases(tmp_path):
    """Four msd-spleen cases; the last is the first one's scan again (a duplicate within the call)."""
    cases = [phantom.case(n, seed=n, classes=("spleen",)) for n in (1, 2, 3)]
    again = phantom.case(4, seed=1, classes=("spleen",))
    again.masks["spleen"][phantom.voxel("spleen")] = False  # its label differs in one voxel
    return write_source("msd-spleen", tmp_path / "spleen", [*cases, again])


def contents(folder):
    """Every file's bytes but the lock's, by path relative to ``folder``."""
    return {path: digest for path, (_, digest) in snapshot(folder).items() if path != ".convert.lock"}


def test_parallel_conversion_equals_serial_and_writes_dataset_json_once(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    root = spleen_cases(tmp_path)
    from dataset_conversion import writer

    writes = []
    save = writer.RawDataset.save
    monkeypatch.setattr(writer.RawDataset, "save", lambda self: writes.append(self.folder.name) or save(self))
    serial = convert("msd-spleen", root, 1)
    parallel = convert("msd-spleen", root, 2, processes=2)
    assert writes == [serial.name, parallel.name]  # once per call, not per case
    assert contents(serial) == contents(parallel)
    record = Provenance.load(parallel)
    assert list(record.sources) == ["msd-spleen_1", "msd-spleen_2", "msd-spleen_3"]
    assert [r["id"] for r in record.sources["msd-spleen_1"]] == ["1", "4"]
    assert record.conflicts["msd-spleen_1"][0]["voxels"] == 1
    meta = phantom.dataset_json(parallel)
    assert not {"sources", "fingerprints", "conflicts"} & set(meta)  # provenance lives in the sidecar


def test_a_killed_call_is_finished_by_the_next_one(tmp_path, monkeypatch):
    """The call is killed (no clean-up runs) right after the third case's files are in place, before
    it is recorded; repeating the call gives exactly the dataset of an uninterrupted one."""
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    root = spleen_cases(tmp_path)
    dying = ("import os\n"
             "from pathlib import Path\n"
             "from dataset_conversion.provenance import Provenance\n"
             "append = Provenance.append\n"
             "def append_or_die(self, record):\n"
             "    if record['record'] == 'case' and len(self.sources) == 2:\n"
             "        os._exit(137)\n"
             "    append(self, record)\n"
             "Provenance.append = append_or_die\n"
             "from dataset_conversion.convert import convert\n"
             f"convert('msd-spleen', Path({str(root)!r}), 1)\n")
    killed = subprocess.run([sys.executable, "-c", dying], capture_output=True, text=True)
    folder = tmp_path / "raw/Dataset001_Universal"
    assert killed.returncode == 137, killed.stderr[-2000:]
    assert (folder / "imagesTr/msd-spleen_3_0000.nii.gz").is_file() and not (folder / "dataset.json").exists()
    convert("msd-spleen", root, 1)
    reference = convert("msd-spleen", root, 2)
    assert contents(folder) == contents(reference)


def test_a_record_line_cut_off_by_a_kill_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    root = spleen_cases(tmp_path)
    folder = convert("msd-spleen", root, 1)
    complete = (folder / FILE_NAME).read_bytes()
    lines = complete.split(b"\n")
    (folder / FILE_NAME).write_bytes(b"\n".join(lines[:-3]) + b"\n" + lines[-3][:25])  # the last case half written
    assert list(Provenance.load(folder).sources) == ["msd-spleen_1", "msd-spleen_2"]
    convert("msd-spleen", root, 1)
    assert (folder / FILE_NAME).read_bytes() == complete


def test_the_duplicate_index_offers_only_scans_of_the_same_shape_mean_and_histogram():
    rng = np.random.default_rng(0)
    scan = rng.integers(-1000, 1500, (20, 30, 40)).astype(np.int16)
    copy = np.flip(np.transpose(scan, (2, 0, 1)), 1) + rng.integers(-1, 2, (40, 20, 30)).astype(np.int16)
    copy.ravel()[:int(duplicates.MAX_DIFFERENT * copy.size)] = 3071  # as many far-off voxels as a copy may have
    index = duplicates.DuplicateIndex()
    shape, histogram, mean = duplicates.fingerprint(scan).split(":")
    for i, offset in enumerate(np.linspace(-900, 900, 1000)):  # same shape and histogram, other means
        index.add(f"other_{i}", f"{shape}:{histogram}:{float(mean) + offset + 0.05:.1f}")
    index.add("scan", duplicates.fingerprint(scan))
    index.add("other shape", duplicates.fingerprint(scan[:, :, :39]))
    candidates = index.candidates(duplicates.fingerprint(copy))
    assert "scan" in candidates and "other shape" not in candidates
    assert len(candidates) <= 1 + 3 * duplicates.MEAN_CELL_HU / (1800 / 999) + 1  # three cells, not 1002 scans
    assert duplicates.alignment(copy, scan) is not None
