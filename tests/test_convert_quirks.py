"""Source quirks: AMOS label 15 by sex, KiTS21 aggregation, Gibson relabels, WORD splits and uint16,
TotalSegmentator v1/v2 and lobes, unzipped 3D-IRCADb, CHAOS's MR part and test set."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conversion import phantom
from dataset_conversion.provenance import Provenance
from conversion.assemble import write_and_convert
from dataset_conversion.convert import convert
from dataset_conversion.source import Options
from nnunet_clip.synthetic.layouts import write_source
from nnunet_clip.taxonomy import CLASS_NAMES


@pytest.fixture(autouse=True)
def raw(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))


def annotated(folder):
    return phantom.dataset_json(folder)["annotated_classes"]


def test_amos_label_15_is_prostate_for_male_patients_only(tmp_path):
    classes = ("bladder", "prostate")
    male = phantom.case(1, seed=1, classes=classes, sex="M")
    female = phantom.case(2, seed=2, classes=("bladder",), sex="F", split="Va",
                          raw_values={15: phantom.case(0, 0, classes).masks["prostate"]})
    unknown = phantom.case(3, seed=3, classes=("bladder",), raw_values=female.meta["raw_values"])
    mri = phantom.case(540, seed=4, classes=classes, sex="M")
    folder = write_and_convert(tmp_path, "amos22", [male, female, unknown, mri])
    ann = annotated(folder)
    assert list(ann) == ["amos22_0001", "amos22_0002", "amos22_0003"]
    assert "prostate" in ann["amos22_0001"] and "prostate" in ann["amos22_0002"]
    assert "prostate" not in ann["amos22_0003"] and "bladder" in ann["amos22_0003"]
    where = phantom.voxel("prostate")
    assert phantom.classes_at(folder, "amos22_0001", where) == {"prostate"}
    assert phantom.classes_at(folder, "amos22_0002", where) == frozenset()
    assert phantom.classes_at(folder, "amos22_0003", where) == frozenset()
    assert phantom.classes_at(folder, "amos22_0002", phantom.voxel("bladder")) == {"bladder"}


@pytest.mark.parametrize("aggregation, ring", [("majority", frozenset()), ("or", {"right kidney"})])
def test_kits21_aggregated_file_choice(tmp_path, aggregation, ring):
    case = phantom.case(12, seed=5, classes=("right kidney", "left kidney", "kidney tumor"))
    folder = write_and_convert(tmp_path, "kits21", [case], options=Options(kits_aggregation=aggregation))
    z, y, x = phantom.BLOCKS["right kidney"]
    assert phantom.classes_at(folder, "kits21_00012", (z, y, x + 2)) == ring  # the OR file's extra ring
    assert phantom.classes_at(folder, "kits21_00012", (z, y, x)) == {"right kidney", "kidney tumor"}
    assert Provenance.load(folder).sources["kits21_00012"][0]["files"][1].endswith(
        f"aggregated_{'MAJ' if aggregation == 'majority' else 'OR'}_seg.nii.gz")


GIBSON_EIGHT = ["spleen", "left kidney", "gall bladder", "esophagus", "liver", "stomach", "pancreas", "duodenum"]


def test_btcv_with_gibson_labels(tmp_path, capsys):
    cases = [phantom.case(1, seed=6, gibson=True), phantom.case(61, seed=7, gibson=True),
             phantom.case(62, seed=8)]
    folder = write_and_convert(tmp_path, "btcv", cases)
    ann = annotated(folder)
    assert list(ann) == ["btcv_0001", "btcv_0061"]  # test case 0062 has no label
    assert ann["btcv_0001"] == list(CLASS_NAMES[:14])
    assert ann["btcv_0061"] == GIBSON_EIGHT
    assert phantom.classes_at(folder, "btcv_0001", phantom.voxel("duodenum")) == {"duodenum"}
    assert phantom.classes_at(folder, "btcv_0061", phantom.voxel("aorta")) == frozenset()
    assert phantom.classes_at(folder, "btcv_0061", phantom.voxel("duodenum")) == {"duodenum"}
    assert "1 images without labels" in capsys.readouterr().out


def test_pancreas_ct_prefers_gibson_labels(tmp_path):
    folder = write_and_convert(tmp_path, "pancreas-ct", [phantom.case(3, seed=9, gibson=True)])
    assert annotated(folder)["pancreas-ct_0003"] == GIBSON_EIGHT
    assert phantom.classes_at(folder, "pancreas-ct_0003", phantom.voxel("left kidney")) == {"left kidney"}
    assert phantom.classes_at(folder, "pancreas-ct_0003", phantom.voxel("right kidney")) == frozenset()
    assert phantom.classes_at(folder, "pancreas-ct_0003", phantom.voxel("pancreas tumor")) == {"pancreas"}


def test_word_splits_and_uint16_labels(tmp_path):
    cases = [phantom.case(74, seed=10), phantom.case(1, seed=11, split="Val"),
             phantom.case(14, seed=12, split="Ts")]
    root = write_source("word", tmp_path / "word", cases)
    assert sitk.ReadImage(str(root / "WORD-V0.1.0/labelsTr/word_0074.nii.gz")).GetPixelID() == sitk.sitkUInt16
    assert (root / "labelsTs/word_0014.nii.gz").is_file()
    folder = convert("word", root, 1)
    for case_id in ("word_0001", "word_0014", "word_0074"):
        for name in ("right adrenal gland", "left adrenal gland", "left head of femur", "rectum"):
            assert phantom.classes_at(folder, case_id, phantom.voxel(name)) == {name}


def test_totalsegmentator_v1_and_merged_lobes(tmp_path):
    folder = write_and_convert(tmp_path, "totalsegmentator", [phantom.case(5, seed=13, version=1)])
    ann = annotated(folder)["totalsegmentator_s0005"]
    assert "prostate" not in ann and "kidney cyst" not in ann and "right lung" in ann
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr/totalsegmentator_s0005.nii.gz")))
    right_lung = phantom.dataset_json(folder)["labels"]["right lung"]
    assert np.isin(label, right_lung).sum() == 8  # three lobe files, one lung
    assert phantom.classes_at(folder, "totalsegmentator_s0005", phantom.voxel("left head of femur")) == frozenset()


def test_ircadb_unzipped_folders(tmp_path):
    folder = write_and_convert(tmp_path, "ircadb", [phantom.case(4, seed=14, zipped=False)])
    assert phantom.classes_at(folder, "ircadb_4", phantom.voxel("right lung")) == {"right lung"}
    assert phantom.classes_at(folder, "ircadb_4", phantom.voxel("liver tumor")) == {"liver"}


def test_chaos_skips_the_mr_part_and_the_test_set(tmp_path, capsys):
    root = write_source("chaos", tmp_path / "chaos", [phantom.case(1, seed=15, classes=("liver",))])
    mr = root / "Train_Sets/MR/1/T2SPIR/Ground"
    mr.mkdir(parents=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 4), 63, np.uint8)), str(mr / "liver_GT_000.png"))
    (root / "Test_Sets/CT/3/DICOM_anon").mkdir(parents=True)
    folder = convert("chaos", root, 1)
    assert list(annotated(folder)) == ["chaos_1"]
    assert phantom.classes_at(folder, "chaos_1", phantom.voxel("liver")) == {"liver"}
    assert "1 images without labels" in capsys.readouterr().out


@pytest.mark.parametrize("source, case_id, organ", [
    ("btcv", "btcv_0001", "liver"), ("pancreas-ct", "pancreas-ct_0001", "pancreas"), ("chaos", "chaos_1", "liver"),
    ("kits21", "kits21_00001", "left kidney"), ("ircadb", "ircadb_1", "left lung"), ("amos22", "amos22_0001", "prostate"),
    ("totalsegmentator", "totalsegmentator_s0001", "kidney cyst")])
def test_layout_one_level_below_input_dir(tmp_path, source, case_id, organ):
    root = write_source(source, tmp_path / "outer/download", [phantom.case(1, seed=16, sex="M")])
    folder = convert(source, root.parent, 1)
    assert list(annotated(folder)) == [case_id]
    assert organ in phantom.classes_at(folder, case_id, phantom.voxel(organ))


def test_gibson_labels_and_amos_metadata_given_by_option(tmp_path):
    btcv = write_source("btcv", tmp_path / "btcv", [phantom.case(2, seed=17, gibson=True)])
    gibson = (btcv / "label_btcv_multiorgan").rename(tmp_path / "label_btcv_multiorgan")
    amos = write_source("amos22", tmp_path / "a/amos", [phantom.case(4, seed=18, sex="M")])
    meta = (amos / "labeled_data_meta_0000_0599.csv").rename(tmp_path / "meta.csv")
    convert("btcv", btcv, 1, options=Options(gibson=gibson))
    convert("amos22", amos, 1)  # no metadata found: prostate unknown
    folder = convert("amos22", amos, 2, options=Options(amos_meta=meta))
    assert "duodenum" in annotated(folder.with_name("Dataset001_Universal"))["btcv_0002"]
    assert "prostate" not in annotated(folder.with_name("Dataset001_Universal"))["amos22_0004"]
    assert "prostate" in annotated(folder)["amos22_0004"]
