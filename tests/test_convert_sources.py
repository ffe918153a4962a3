"""Every source, from its official layout, into one universal dataset that nnU-Net accepts.

One phantom case per source (every class present in the image); the dataset must show exactly
the classes the source annotates, each voxel in all its classes (a tumour voxel in its organ too).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

from conversion import phantom
from dataset_conversion.provenance import Provenance
from conversion.assemble import snapshot, write_and_convert
from dataset_conversion.convert import convert
from nnunet_clip.taxonomy import CLASS_NAMES, PARENTS, dataset_labels

DATASET_ID = 501
ORGANS_1_TO_13 = CLASS_NAMES[:13]

# source -> (case number in the fixture, dataset case identifier, classes the source annotates)
CASES = {
    "btcv": (1, "btcv_0001", ORGANS_1_TO_13),
    "pancreas-ct": (2, "pancreas-ct_0002", ("pancreas",)),
    "chaos": (1, "chaos_1", ("liver",)),
    "lits": (3, "lits_3", ("liver", "liver tumor")),
    "kits19": (4, "kits19_00004", ("right kidney", "left kidney", "kidney tumor")),
    "kits21": (5, "kits21_00005", ("right kidney", "left kidney", "kidney tumor", "kidney cyst")),
    "kits23": (400, "kits23_00400", ("right kidney", "left kidney", "kidney tumor", "kidney cyst")),
    "ircadb": (1, "ircadb_1", ("spleen", "right kidney", "left kidney", "gall bladder", "liver", "stomach",
                               "pancreas", "right lung", "left lung")),
    "word": (2, "word_0002", ("liver", "spleen", "left kidney", "right kidney", "stomach", "gall bladder",
                              "esophagus", "pancreas", "duodenum", "colon", "intestine", "right adrenal gland",
                              "left adrenal gland", "rectum", "bladder", "left head of femur",
                              "right head of femur")),
    "abdomenct-1k": (1, "abdomenct-1k_00001", ("liver", "right kidney", "left kidney", "spleen", "pancreas")),
    "abdomenct-12organ": (1, "abdomenct-12organ_0001", (
        "liver", "right kidney", "left kidney", "spleen", "pancreas", "aorta", "postcava", "stomach",
        "gall bladder", "esophagus", "right adrenal gland", "left adrenal gland", "celiac trunk")),
    "flare22": (1, "flare22_0001", ("liver", "right kidney", "spleen", "pancreas", "aorta", "postcava",
                                    "right adrenal gland", "left adrenal gland", "gall bladder", "esophagus",
                                    "stomach", "duodenum", "left kidney")),
    "amos22": (1, "amos22_0001", ("spleen", "right kidney", "left kidney", "gall bladder", "esophagus", "liver",
                                  "stomach", "aorta", "postcava", "pancreas", "right adrenal gland",
                                  "left adrenal gland", "duodenum", "bladder", "prostate")),
    "msd-liver": (7, "msd-liver_7", ("liver", "liver tumor")),
    "msd-lung": (1, "msd-lung_001", ("lung tumor",)),
    "msd-pancreas": (1, "msd-pancreas_001", ("pancreas", "pancreas tumor")),
    "msd-hepaticvessel": (1, "msd-hepaticvessel_001", ("hepatic vessel", "hepatic vessel tumor")),
    "msd-spleen": (2, "msd-spleen_2", ("spleen",)),
    "msd-colon": (1, "msd-colon_001", ("colon tumor",)),
    "ct-org": (1, "ct-org_1", ("liver", "bladder", "right lung", "left lung", "right kidney", "left kidney")),
    "totalsegmentator": (1, "totalsegmentator_s0001", (
        *ORGANS_1_TO_13, "duodenum", "right lung", "left lung", "colon", "intestine", "bladder", "prostate",
        "kidney cyst")),
}
BONE = (0, 11, 15)  # a CT-ORG voxel labelled 5 (bone): not a universal class
HOST_VOXEL = {"kidney tumor": "right kidney", "kidney cyst": "right kidney", "lung tumor": "right lung"}


def fixture_cases(source: str):
    number, _, _ = CASES[source]
    case = phantom.case(number, seed=list(CASES).index(source), sex="M")
    if source == "ct-org":
        bone = case.masks["spleen"] & False
        bone[BONE] = True
        case.meta["raw_values"] = {5: bone}
    return [case]


@pytest.fixture(scope="module")
def assembled(tmp_path_factory, monkeypatch_module):
    tmp = tmp_path_factory.mktemp("sources")
    monkeypatch_module.setenv("nnUNet_raw", str(tmp / "raw"))
    inputs = {}
    for source in CASES:
        folder = write_and_convert(tmp, source, fixture_cases(source), DATASET_ID)
        inputs[source] = tmp / source
    return folder, inputs


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def truth(name: str) -> set[str]:
    """The classes of the phantom voxel of ``name``: the structure and the organ hosting it."""
    hosts = PARENTS.get(name, ())
    return {name, HOST_VOXEL.get(name, hosts[0])} if hosts else {name}


@pytest.mark.parametrize("source", list(CASES))
def test_each_voxel_has_exactly_the_annotated_classes(assembled, source):
    folder, _ = assembled
    _, case_id, annotated = CASES[source]
    meta = phantom.dataset_json(folder)
    assert meta["annotated_classes"][case_id] == [c for c in CLASS_NAMES if c in annotated]
    for name in CLASS_NAMES:
        assert phantom.classes_at(folder, case_id, phantom.voxel(name)) == truth(name) & set(annotated), name
    assert phantom.classes_at(folder, case_id, (0, 0, 0)) == frozenset()


def test_ct_org_bone_is_background(assembled):
    folder, _ = assembled
    assert phantom.classes_at(folder, "ct-org_1", BONE) == frozenset()


def test_dataset_json_and_files(assembled):
    folder, _ = assembled
    meta = phantom.dataset_json(folder)
    labels, order = dataset_labels()
    assert meta["labels"] == labels and meta["regions_class_order"] == order
    assert meta["labels"]["liver tumor"] != [] and len(meta["labels"]) == 33
    assert meta["numTraining"] == len(CASES) == len(meta["annotated_classes"])
    assert meta["channel_names"] == {"0": "CT"} and meta["file_ending"] == ".nii.gz"
    assert meta["overwrite_image_reader_writer"] == "NibabelIOWithReorient"  # nnU-Net reorients on read, back on write
    expected = sorted(case_id for _, case_id, _ in CASES.values())
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == [f"{c}_0000.nii.gz" for c in expected]
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == [f"{c}.nii.gz" for c in expected]
    assert Provenance.load(folder).sources["kits21_00005"][0]["files"][1].endswith("case_00005/aggregated_MAJ_seg.nii.gz")
    for case_id in expected:
        image = sitk.ReadImage(str(folder / "imagesTr" / f"{case_id}_0000.nii.gz"))
        label = sitk.ReadImage(str(folder / "labelsTr" / f"{case_id}.nii.gz"))
        assert image.GetPixelID() == sitk.sitkInt16 and label.GetPixelID() == sitk.sitkUInt8
        assert (label.GetSize(), label.GetSpacing(), label.GetOrigin(), label.GetDirection()) == (
            image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())


def test_repeating_every_call_changes_nothing(assembled, capsys):
    folder, inputs = assembled
    before = snapshot(folder)
    for source, root in inputs.items():
        convert(source, root, DATASET_ID)
    assert snapshot(folder) == before
    assert "0 cases added, 0 joined existing cases as duplicates, 1 already converted" in capsys.readouterr().out


def test_nnunet_verifies_and_fingerprints_the_dataset(assembled, tmp_path):
    folder, _ = assembled
    env = {**os.environ, "nnUNet_raw": str(folder.parent), "nnUNet_preprocessed": str(tmp_path / "pre"),
           "nnUNet_results": str(tmp_path / "results"), "nnUNet_def_n_proc": "1"}
    command = Path(sys.executable).parent / "nnUNetv2_extract_fingerprint"
    result = subprocess.run([str(command), "-d", str(DATASET_ID), "--verify_dataset_integrity", "-np", "1"],
                            env=env, capture_output=True, encoding="utf-8", errors="replace")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "verify_dataset_integrity Done" in result.stdout
    fingerprint = json.loads((tmp_path / "pre" / folder.name / "dataset_fingerprint.json").read_text())
    assert len(fingerprint["spacings"]) == len(CASES)
    assert sorted(fingerprint["shapes_after_crop"][0]) == sorted(phantom.SHAPE)
