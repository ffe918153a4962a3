"""A class is any name: the universal classes with their aliases, sides and parents, and the classes a dataset adds."""
from __future__ import annotations

import pytest

from nnunet_clip.dataset_classes import as_regions, class_names
from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import canonical_name, dataset_labels, is_known, is_lesion, side_of
from nnunet_clip.vocabulary import DEFAULT, ClassInfo, Vocabulary


def test_names_in_any_spelling_map_to_one_canonical_form_and_unknown_names_are_new_classes():
    assert canonical_name("Liver ") == "liver"
    assert canonical_name("IVC") == canonical_name("inferior_vena_cava") == "postcava"
    assert canonical_name("Kidney_Left") == "left kidney"
    assert canonical_name("  Uterus") == "uterus" and not is_known("uterus")
    assert canonical_name("vertebrae_L1") == "vertebrae l1"
    assert side_of("rib_left_1") == "left" and side_of("liver") is None
    assert is_lesion("Liver Lesion") and is_lesion("kidney cyst") and not is_lesion("hepatic vessel")


def test_the_default_vocabulary_is_the_32_universal_classes():
    assert DEFAULT.labels() == dataset_labels()
    assert DEFAULT.sided_pairs() == [("right kidney", "left kidney"), ("right adrenal gland", "left adrenal gland"),
                                     ("right lung", "left lung"), ("right head of femur", "left head of femur")]
    assert DEFAULT.unsided()["kidney"] == ("right kidney", "left kidney")


def test_added_classes_bring_parents_and_sides_into_atoms_pairs_and_dataset_json():
    vocabulary = DEFAULT.with_classes({"liver lesion": ClassInfo(("liver",)), "rib left 1": ClassInfo(side="left"),
                                       "rib right 1": ClassInfo(side="right"), "uterus": ClassInfo()})
    assert vocabulary.names[32:] == ("liver lesion", "rib left 1", "rib right 1", "uterus")
    assert ("rib right 1", "rib left 1") in vocabulary.sided_pairs() and vocabulary.unsided()["rib 1"]
    labels, order = vocabulary.labels(["Liver", "liver lesion", "uterus"])
    assert labels == {"background": 0, "liver": [1, 4], "liver lesion": [2, 4], "uterus": [3]}
    assert order == [1, 4, 3]  # a lesion is exported with its host
    stored = {"added_classes": vocabulary.to_json()}
    assert stored["added_classes"]["liver lesion"] == {"parents": ["liver"]}
    assert Vocabulary.of_dataset(stored).to_json() == vocabulary.to_json()


def test_a_class_cannot_be_redefined_nor_lie_inside_an_unknown_class_or_itself():
    with pytest.raises(ValueError, match="'liver tumor' is defined already"):
        DEFAULT.with_classes({"liver tumor": ClassInfo(("spleen",))})
    with pytest.raises(ValueError, match="its parent 'womb' is not a class"):
        DEFAULT.with_classes({"fibroid": ClassInfo(("womb",))})
    with pytest.raises(ValueError, match="inside itself"):
        DEFAULT.with_classes({"a": ClassInfo(("b",)), "b": ClassInfo(("a",))})


def test_a_plain_integer_label_dataset_becomes_one_region_per_class():
    plain = {"labels": {"background": 0, "Liver": 1, "uterus": 2}, "file_ending": ".nii.gz"}
    regions = as_regions(plain)
    assert regions["labels"] == {"background": 0, "Liver": [1, 1], "uterus": [2, 2]}
    assert regions["regions_class_order"] == [1, 2]
    converted = {"labels": dataset_labels(["liver", "liver tumor"])[0], "regions_class_order": [1, 3]}
    assert as_regions(converted) is converted
    assert class_names(regions["labels"]) == ["liver", "uterus"]
    with pytest.raises(InputError, match="two labels name the class 'postcava'"):
        class_names({"background": 0, "IVC": 1, "postcava": 2})
