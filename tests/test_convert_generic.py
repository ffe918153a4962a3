"""Sources that take their class names from the data: any nnU-Net raw dataset, one mask file per class
(AbdomenAtlas, TotalSegmentator with all its classes). Known names in other spellings map to the
universal classes; any other name is a class the dataset adds, with its parents and side."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conversion import phantom
from dataset_conversion.convert import convert
from dataset_conversion.source import Options
from nnunet_clip.errors import InputError
from nnunet_clip.synthetic.layouts import SourceCase, write_source

UTERUS = (1, 10, 1)  # voxels no universal block of the phantom uses
LESION = (8, 7, 1)  # inside the liver's block
RIB_RIGHT, RIB_LEFT, HEART = (10, 10, 1), (10, 10, 14), (10, 7, 7)  # patient's right: low x (LPS)


@pytest.fixture(autouse=True)
def raw(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))


def voxel_mask(*voxels):
    mask = np.zeros(phantom.SHAPE, bool)
    for v in voxels:
        mask[v] = True
    return mask


def renamed(case: SourceCase, names: dict[str, str], **extra) -> SourceCase:
    """``case`` with its masks under other names (source names), plus ``extra`` masks."""
    return SourceCase(case.case_id, case.image, {**{new: case.masks[old] for old, new in names.items()}, **extra},
                      dict(case.meta))


def nnunet_case(n: int) -> SourceCase:
    """Liver, spleen, postcava, both kidneys as one "kidney", and a uterus, named as a group might name them."""
    case = phantom.case(n, seed=n, classes=("liver", "spleen", "right kidney", "left kidney", "postcava"))
    return renamed(case, {"liver": "Liver ", "postcava": "IVC", "spleen": "spleen"},
                   kidney=case.masks["right kidney"] | case.masks["left kidney"], Uterus=voxel_mask(UTERUS))


def test_nnunet_integer_labels_aliases_an_unsided_kidney_and_a_new_class_reported_once(tmp_path, capsys):
    cases = [nnunet_case(1), nnunet_case(2)]
    root = write_source("nnunet", tmp_path / "nn", cases)
    folder = convert("nnunet", root, 1)
    meta = phantom.dataset_json(folder)
    assert list(meta["annotated_classes"]) == ["synthetic_1", "synthetic_2"]  # named after Dataset900_Synthetic
    assert meta["annotated_classes"]["synthetic_2"] == ["spleen", "right kidney", "left kidney", "liver", "postcava",
                                                        "uterus"]
    assert meta["added_classes"] == {"uterus": {}}
    assert meta["overwrite_image_reader_writer"] == "NibabelIOWithReorient"
    for name in ("liver", "postcava", "right kidney", "left kidney"):  # kidneys split by world side
        assert phantom.classes_at(folder, "synthetic_1", phantom.voxel(name)) == {name}
    assert phantom.classes_at(folder, "synthetic_1", UTERUS) == {"uterus"}
    assert capsys.readouterr().out.count("new class 'uterus'") == 1
    convert("nnunet", root, 1)
    assert "new class" not in capsys.readouterr().out


def test_nnunet_integer_labels_with_a_renamed_class_inside_another(tmp_path):
    case = phantom.case(3, seed=3, classes=("liver",))
    case = renamed(case, {"liver": "liver"}, lesion=voxel_mask(LESION))
    root = write_source("nnunet", tmp_path / "nn", [case])
    options = Options(renames={"lesion": "Liver Lesion"}, parents={"liver lesion": ("liver",)})
    folder = convert("nnunet", root, 1, options=options)
    assert phantom.dataset_json(folder)["added_classes"] == {"liver lesion": {"parents": ["liver"]}}
    assert phantom.classes_at(folder, "synthetic_3", LESION) == {"liver", "liver lesion"}  # the lesion is liver too
    with pytest.raises(InputError, match=r"--rename cyst: no class of that name in .*Dataset900_Synthetic"):
        convert("nnunet", root, 1, options=Options(renames={"cyst": "liver cyst"}))


def test_nnunet_regions_imply_parents_and_overlaps_without_one_are_refused(tmp_path):
    case = renamed(phantom.case(4, seed=4, classes=("liver",)), {"liver": "liver"}, lesion=voxel_mask(LESION))
    root = write_source("nnunet", tmp_path / "nn", [case])
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "liver": [1, 2], "lesion": [2]}  # value 2 is liver and lesion
    meta["regions_class_order"] = [1, 2]
    (root / "dataset.json").write_text(json.dumps(meta))
    folder = convert("nnunet", root, 1)
    assert phantom.dataset_json(folder)["added_classes"] == {"lesion": {"parents": ["liver"]}}
    assert phantom.classes_at(folder, "synthetic_4", LESION) == {"liver", "lesion"}
    meta["labels"] = {"background": 0, "liver": [1, 2], "vessel": [2, 3]}
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"dataset.json: label value 2: \('liver', 'vessel'\) is not one label atom; "
                                         r"declare one inside the other with --parent CHILD=PARENT"):
        convert("nnunet", root, 2)


def test_a_converted_dataset_converts_again_with_its_regions_and_annotated_classes(tmp_path):
    first = convert("msd-liver", write_source("msd-liver", tmp_path / "msd", [phantom.case(5, seed=5)]), 1)
    folder = convert("nnunet", first, 2)
    meta = phantom.dataset_json(folder)
    assert meta["annotated_classes"] == {"universal_msd-liver_5": ["liver", "liver tumor"]}
    assert "added_classes" not in meta
    for name in ("liver", "liver tumor", "spleen"):
        assert phantom.classes_at(folder, "universal_msd-liver_5", phantom.voxel(name)) == \
               phantom.classes_at(first, "msd-liver_5", phantom.voxel(name))


def test_per_class_files_one_class_per_file_and_each_case_annotates_its_files(tmp_path):
    cases = [renamed(phantom.case(n, seed=n, classes=("liver", "left kidney")),
                     {"liver": "liver", "left kidney": "Kidney_Left"}, liver_lesion=voxel_mask(LESION),
                     **({"uterus": voxel_mask(UTERUS)} if n == 1 else {}))
             for n in (1, 2)]
    root = write_source("per-class-files", tmp_path / "My Atlas", cases)
    folder = convert("per-class-files", root, 1, options=Options(parents={"liver lesion": ("liver",)}))
    meta = phantom.dataset_json(folder)
    assert meta["annotated_classes"] == {"my-atlas_1": ["left kidney", "liver", "liver lesion", "uterus"],
                                         "my-atlas_2": ["left kidney", "liver", "liver lesion"]}
    assert phantom.classes_at(folder, "my-atlas_1", LESION) == {"liver", "liver lesion"}
    assert phantom.classes_at(folder, "my-atlas_1", phantom.voxel("left kidney")) == {"left kidney"}
    (root / "2/ct.nii.gz").unlink()
    with pytest.raises(InputError, match=r"My Atlas/2: missing the image ct.nii.gz of this case"):
        convert("per-class-files", root, 2)


def test_abdomenatlas_femur_files_are_heads_of_femur_and_cases_without_image_are_skipped(tmp_path, capsys):
    female = phantom.case(7, seed=7, classes=tuple(n for n in phantom.BLOCKS if n != "prostate"))
    root = write_source("abdomenatlas", tmp_path / "atlas", [phantom.case(6, seed=6), female,
                                                             phantom.case(8, seed=8, no_image=True)])
    folder = convert("abdomenatlas", root, 1)
    meta = phantom.dataset_json(folder)
    assert list(meta["annotated_classes"]) == ["abdomenatlas_BDMAP_00000006", "abdomenatlas_BDMAP_00000007"]
    assert len(meta["annotated_classes"]["abdomenatlas_BDMAP_00000006"]) == 25 and "added_classes" not in meta
    assert "prostate" not in meta["annotated_classes"]["abdomenatlas_BDMAP_00000007"]
    assert phantom.classes_at(folder, "abdomenatlas_BDMAP_00000006", phantom.voxel("left head of femur")) == {
        "left head of femur"}
    assert "1 images without labels" in capsys.readouterr().out


def test_totalsegmentator_all_classes_lobes_inside_lungs_and_sided_ribs(tmp_path):
    case = phantom.case(9, seed=9)
    case.meta["extra_files"] = {"heart": voxel_mask(HEART), "rib_right_1": voxel_mask(RIB_RIGHT),
                                "rib_left_1": voxel_mask(RIB_LEFT)}
    root = write_source("totalsegmentator", tmp_path / "ts", [case])
    folder = convert("totalsegmentator", root, 1, options=Options(classes="all"))
    meta = phantom.dataset_json(folder)
    added = meta["added_classes"]
    assert added["rib left 1"] == {"side": "left"} and added["heart"] == {}
    assert added["lung upper lobe right"] == {"parents": ["right lung"], "side": "right"}
    assert set(added) >= {"femur left", "femur right", "trachea", "vertebrae l1", "lung middle lobe right"}
    case_id = "totalsegmentator_s0009"
    assert {"right lung", "left lung", "heart", "rib right 1", "kidney cyst"} <= set(meta["annotated_classes"][case_id])
    lung = phantom.classes_at(folder, case_id, phantom.voxel("right lung"))
    assert "right lung" in lung and len(lung) == 2 and next(iter(lung - {"right lung"})).startswith("lung ")
    assert phantom.classes_at(folder, case_id, RIB_LEFT) == {"rib left 1"}
    assert phantom.classes_at(folder, case_id, HEART) == {"heart"}
