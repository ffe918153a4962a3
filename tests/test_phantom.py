"""The synthetic phantoms: anatomy in world coordinates, hosts, Hounsfield values, and the sources
written in their real layouts, converted back by ``nnunet-clip convert``."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_clip.synthetic.phantom import generate_phantom
from nnunet_clip.synthetic.sources import SyntheticSource, atom_map, oriented_case, write_heldout, write_sources
from nnunet_clip.taxonomy import CLASS_NAMES, PARENTS, atom_table, dataset_labels


@pytest.fixture(scope="module")
def phantoms():
    return [generate_phantom(seed) for seed in range(4)]


def centroid(phantom, name):
    """Physical (x, y, z) LPS centre of a class: x toward the patient's left, y posterior, z up."""
    index = np.argwhere(phantom.masks[name]).mean(axis=0)[::-1]
    return np.array(phantom.image.TransformContinuousIndexToPhysicalPoint(index.tolist()))


def test_deterministic_and_varied():
    a, b, c = generate_phantom(7), generate_phantom(7), generate_phantom(8)
    assert np.array_equal(sitk.GetArrayViewFromImage(a.image), sitk.GetArrayViewFromImage(b.image))
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in CLASS_NAMES)
    assert a.image.GetSpacing() != c.image.GetSpacing()
    assert a.masks["liver"].sum() != c.masks["liver"].sum()


def test_masks_and_image(phantoms):
    for p in phantoms:
        shape = sitk.GetArrayViewFromImage(p.image).shape
        assert list(p.masks) == list(CLASS_NAMES)
        assert all(m.dtype == bool and m.shape == shape for m in p.masks.values())
        assert p.image.GetPixelID() == sitk.sitkInt16
        organs = [n for n in CLASS_NAMES if n not in PARENTS]
        assert np.logical_or.reduce([p.masks[n] for n in organs]).sum() == sum(p.masks[n].sum() for n in organs), \
            "organs overlap"
        assert all(p.masks[n].sum() > 5 for n in organs if n != "prostate")
        assert p.masks["prostate"].any() == (p.sex == "M")


def test_structures_lie_inside_their_hosts(phantoms):
    for p in phantoms:
        for child, hosts in PARENTS.items():
            host = np.logical_or.reduce([p.masks[h] for h in hosts])
            assert not (p.masks[child] & ~host).any(), child
        assert p.masks["hepatic vessel"].any()
    present = {n for p in phantoms for n in p.present}
    assert {"liver tumor", "kidney tumor", "lung tumor", "colon tumor"} <= present


def test_anatomy_in_world_coordinates(phantoms):
    for p in phantoms:
        c = {n: centroid(p, n) for n in CLASS_NAMES if p.masks[n].any()}
        assert c["liver"][0] < c["spleen"][0], "liver on the patient's right, spleen on the left"
        for right, left in (("right kidney", "left kidney"), ("right lung", "left lung"),
                            ("right adrenal gland", "left adrenal gland"),
                            ("right head of femur", "left head of femur")):
            assert c[right][0] < c[left][0] - 50, (right, left)
        assert c["right kidney"][1] > c["pancreas"][1] and c["left kidney"][1] > c["stomach"][1], "kidneys posterior"
        assert c["aorta"][1] > c["pancreas"][1]
        assert c["right lung"][2] > c["liver"][2] > c["right kidney"][2] > c["bladder"][2] > c["right head of femur"][2]
        assert c["right adrenal gland"][2] > c["right kidney"][2]


def test_hounsfield_values(phantoms):
    for p in phantoms:
        hu = sitk.GetArrayViewFromImage(p.image)
        median = {n: np.median(hu[p.masks[n]]) for n in ("liver", "spleen", "right lung", "left head of femur",
                                                          "aorta", "bladder")}
        assert 60 < median["liver"] < 150 and 60 < median["spleen"] < 170
        assert median["right lung"] < -600
        assert median["left head of femur"] > 250
        assert median["aorta"] > median["liver"] > median["bladder"]
        assert hu[0, 0, 0] < -900, "air outside the body"
        assert hu[p.masks["liver"]].std() > 5, "noise and texture"


def test_shape_and_spacing():
    p = generate_phantom(3, shape=(30, 40, 50))
    assert sitk.GetArrayViewFromImage(p.image).shape == (30, 40, 50)
    q = generate_phantom(3, spacing=(4.0, 4.0, 6.0))
    assert q.image.GetSpacing() == (4.0, 4.0, 6.0)
    assert q.masks["liver"].sum() > p.masks["liver"].sum()


def test_atom_map_round_trip(phantoms):
    labels = dataset_labels()[0]
    table = atom_table(labels)
    for p in phantoms[:2]:
        atoms = atom_map(p.masks)
        for name in CLASS_NAMES:
            region = np.isin(atoms, [v for v, classes in table.items() if name in classes])
            assert np.array_equal(region, p.masks[name]), name


def test_sources_convert_back_to_the_phantoms(tmp_path, monkeypatch):
    """Written in their real layouts and orientations, then converted: the labels equal the phantom's
    masks of exactly the classes each source annotates, sides decided in world coordinates."""
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    from dataset_conversion.convert import convert

    sources = (SyntheticSource("btcv", 1, "RAS"), SyntheticSource("kits23", 1, "LPS"),
               SyntheticSource("msd-liver", 1, "RAI"))
    inputs = write_sources(tmp_path / "sources", sources, seed=20)
    for name, folder in inputs.items():
        raw = convert(name, folder, 990, "Phantoms")
    dataset = json.loads((raw / "dataset.json").read_text())
    table = atom_table(dataset["labels"])
    expected = {"btcv_0001": (20, CLASS_NAMES[:13]),
                "kits23_00001": (21, ("right kidney", "left kidney", "kidney tumor", "kidney cyst")),
                "msd-liver_1": (22, ("liver", "liver tumor"))}
    assert set(dataset["annotated_classes"]) == set(expected)
    for case, (seed, classes) in expected.items():
        assert set(dataset["annotated_classes"][case]) == set(classes)
        phantom = generate_phantom(seed)
        label = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTr" / f"{case}.nii.gz")))
        for name in CLASS_NAMES:
            region = np.isin(label, [v for v, c in table.items() if name in c])
            expected_region = phantom.masks[name] if name in classes else np.zeros_like(region)
            assert np.array_equal(region, expected_region), (case, name)


def test_oriented_case_keeps_masks_on_the_image():
    p = generate_phantom(5)
    case = oriented_case(p, 1, "IPL")
    liver = sitk.GetImageFromArray(case.masks["liver"].astype(np.uint8))
    liver.CopyInformation(case.image)
    back = sitk.GetArrayFromImage(sitk.DICOMOrient(liver, "LPS")).astype(bool)
    assert case.image.GetSize() != p.image.GetSize()
    assert np.array_equal(back, p.masks["liver"])


def test_heldout_set(tmp_path):
    phantoms = write_heldout(tmp_path, 2, seed=50)
    dataset = json.loads((tmp_path / "dataset.json").read_text())
    assert sorted(dataset["annotated_classes"]) == ["phantom_001", "phantom_002"]
    assert all(len(v) == 32 for v in dataset["annotated_classes"].values())
    label = sitk.ReadImage(str(tmp_path / "labelsTs/phantom_002.nii.gz"))
    image = sitk.ReadImage(str(tmp_path / "imagesTs/phantom_002_0000.nii.gz"))
    assert label.GetSpacing() == image.GetSpacing()
    assert np.allclose(image.GetSpacing(), phantoms[1].image.GetSpacing(), atol=1e-5)
    assert np.array_equal(sitk.GetArrayFromImage(label), atom_map(phantoms[1].masks))
