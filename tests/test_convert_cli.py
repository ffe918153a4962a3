"""``nnunet-clip convert`` through the command-line entry point."""
from __future__ import annotations

from conversion import phantom
from dataset_conversion.provenance import Provenance
from dataset_conversion.registry import SOURCES
from nnunet_clip.cli import main
from nnunet_clip.synthetic.layouts import write_source

SOURCE_NAMES = ["btcv", "pancreas-ct", "chaos", "lits", "kits19", "kits21", "kits23", "ircadb", "word",
                "abdomenct-1k", "abdomenct-12organ", "flare22", "amos22", "msd-liver", "msd-lung",
                "msd-pancreas", "msd-hepaticvessel", "msd-spleen", "msd-colon", "ct-org", "totalsegmentator",
                "abdomenatlas", "nnunet", "per-class-files"]


def test_list_names_every_source(capsys):
    assert main(["convert", "--list"]) == 0
    out = capsys.readouterr().out
    assert list(SOURCES) == SOURCE_NAMES
    assert [line.split()[0] for line in out.splitlines() if not line.startswith(" ")] == SOURCE_NAMES
    assert "annotates: right kidney, left kidney, kidney tumor, kidney cyst" in out
    assert "left adrenal gland, duodenum, bladder, prostate\n" in out  # amos22: prostate for male patients


def test_convert_call_and_its_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    root = write_source("kits21", tmp_path / "kits", [phantom.case(3, seed=1)])
    assert main(["convert", "kits21", str(root), "-d", "42", "--name", "Abdomen", "--kits-aggregation", "or"]) == 0
    folder = tmp_path / "raw/Dataset042_Abdomen"
    assert Provenance.load(folder).sources["kits21_00003"][0]["files"][1].endswith("aggregated_OR_seg.nii.gz")
    assert phantom.classes_at(folder, "kits21_00003", phantom.voxel("kidney cyst")) == {"right kidney", "kidney cyst"}
    capsys.readouterr()
    assert main(["convert", "kits21", str(root)]) == 2
    assert capsys.readouterr().err == "nnunet-clip convert: error: give SOURCE INPUT_DIR -d DATASET_ID, or --list\n"
    assert main(["convert", "lits", str(root), "-d", "42"]) == 2
    assert capsys.readouterr().err == f"nnunet-clip convert: error: {root}: no lits cases found (expected files " \
                                      f"like Training Batch 1/volume-0.nii in this folder or one level below)\n"
