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
                                      f"like Training Batch 1/volume-0.nii in this folder or a few levels below)\n"


def test_options_of_the_sources_that_name_their_own_classes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    case = phantom.case(1, seed=2, classes=("liver",))
    lesion, ventricle = (case.masks["liver"] & False for _ in range(2))
    lesion[8, 7, 1] = ventricle[10, 7, 12] = True
    case.masks.update({"lesion": lesion, "left_ventricle": ventricle})
    root = write_source("per-class-files", tmp_path / "atlas", [case])
    assert main(["convert", "per-class-files", str(root), "-d", "7", "-np", "2", "--rename", "lesion=Liver Lesion",
                 "--parent", "liver lesion=Liver", "--side", "left ventricle=none", "--source-name", "Group A"]) == 0
    meta = phantom.dataset_json(tmp_path / "raw/Dataset007_Universal")
    assert meta["added_classes"] == {"left ventricle": {}, "liver lesion": {"parents": ["liver"]}}
    assert list(meta["annotated_classes"]) == ["group-a_1"]
    capsys.readouterr()
    assert main(["convert", "per-class-files", str(root), "-d", "7", "--side", "left ventricle=up"]) == 2
    assert capsys.readouterr().err == ("nnunet-clip convert: error: --side left ventricle=up: the side is one of "
                                       "right, left, none\n")
    assert main(["convert", "per-class-files", str(root), "-d", "7", "--parent", "heart=chest"]) == 2
    assert "--parent heart: not a class of this source" in capsys.readouterr().err
