"""What ``nnunet-clip predict`` writes, on constructed masks: the label map, labels.json, atomic files."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_clip.inference.classes import select_classes
from nnunet_clip.inference.inputs import find_cases
from nnunet_clip.inference.outputs import atomic_path, label_map, labels_json, map_labels, write_image
from nnunet_clip.errors import InputError
from nnunet_clip.taxonomy import CLASS_NAMES


def test_label_map_keeps_tumour_inside_organ_and_names_every_value():
    liver, tumour, spleen = (np.zeros((4, 6, 6), bool) for _ in range(3))
    liver[:, :4, :4] = True
    tumour[1:3, 1:3, 1:3] = True
    spleen[:, 3:, 3:] = True  # overlaps the liver at [:, 3, 3]: not an atom, one of them wins
    masks = {"liver": liver, "liver tumor": tumour, "spleen": spleen}
    labels = map_labels(list(masks))
    assert labels == {"background": 0, "spleen": [1], "liver": [2, 4], "liver tumor": [3, 4]}
    values = label_map(masks, labels)
    assert np.all(values[tumour] == 4)
    for name, mask in masks.items():
        assert not np.any(np.isin(values, labels[name]) & ~mask), name
    assert np.array_equal(np.isin(values, labels["liver tumor"]), tumour)
    assert np.array_equal(values > 0, liver | spleen)
    assert labels_json(list(masks))["values"] == {"1": ["spleen"], "2": ["liver"], "3": ["liver tumor"],
                                                  "4": ["liver", "liver tumor"]}


def test_new_names_get_values_after_the_trained_ones():
    assert map_labels(["gallstone", "spleen"]) == {"background": 0, "spleen": [1], "gallstone": [2]}


def test_atomic_write_leaves_no_file_on_failure(tmp_path):
    target = tmp_path / "case" / "liver.nii.gz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(target.parent.iterdir()) == []
    reference = sitk.Image(5, 4, 3, sitk.sitkInt16)
    reference.SetOrigin((1.5, -2.0, 7.25))
    write_image(np.ones((3, 4, 5), np.uint8), reference, target)
    assert [p.name for p in target.parent.iterdir()] == ["liver.nii.gz"]
    assert sitk.ReadImage(str(target)).GetOrigin() == (1.5, -2.0, 7.25)


def test_inputs_any_names_and_dicom_folders(tmp_path):
    image = sitk.Image(8, 8, 4, sitk.sitkInt16)
    for name in ("patient 1.nii.gz", "b.nii", "c.mha", "d_0000.nii.gz"):
        sitk.WriteImage(image, str(tmp_path / name))
    (tmp_path / "notes.txt").write_text("not an image")
    assert [(c.name, len(c.files)) for c in find_cases(tmp_path)] == [("b", 1), ("c", 1), ("d", 1), ("patient 1", 1)]
    assert find_cases(tmp_path / "b.nii")[0].name == "b"
    with pytest.raises(InputError, match="no such file"):
        find_cases(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        find_cases(tmp_path / "empty")


def test_class_names_aliases_and_postprocessing_helpers():
    selection = select_classes(["IVC", "inferior vena cava", "Kidney Tumour", "right adrenal"], list(CLASS_NAMES),
                               None, with_helpers=True)
    assert selection.requested == ["postcava", "kidney tumor", "right adrenal gland"]
    assert selection.model_classes == ["right kidney", "left kidney", "postcava", "right adrenal gland",
                                       "left adrenal gland", "kidney tumor"]
    assert select_classes(["liver tumor"], list(CLASS_NAMES), None, with_helpers=False).computed == ["liver tumor"]
    with pytest.raises(InputError, match="one-hot.*the model knows: spleen, right kidney"):
        select_classes(["gallstone"], list(CLASS_NAMES), None, with_helpers=True)
