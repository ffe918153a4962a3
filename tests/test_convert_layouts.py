"""Every source found in every way its download is unpacked (``layouts.UNPACKINGS``), and
``nnunet-clip convert`` saying which layout it found."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from conversion import phantom
from dataset_conversion.registry import SOURCES
from dataset_conversion.source import Options
from nnunet_clip.cli import main
from nnunet_clip.errors import InputError
from nnunet_clip.synthetic.layouts import unpack_as, write_source

FOLDER_SOURCES = ("chaos", "pancreas-ct", "ircadb")
"""Sources read as folders of DICOM series: their archives must be unpacked (3D-IRCADb's own
per-patient zips aside)."""
TWO_ARCHIVES = ("pancreas-ct", "abdomenct-1k")
"""Downloads of two archives side by side (images, labels): no single top folder."""
USERS_OWN_LAYOUT = ("nnunet", "per-class-files")
"""Generic sources: a folder the user points at (an nnU-Net raw dataset, one folder of mask files per
case), not the unpacking of a download."""
DOWNLOADS = [source for source in SOURCES if source not in USERS_OWN_LAYOUT]
UNPACKED_EVERY_WAY = [
    *((source, "as shipped") for source in SOURCES),
    *((source, "top folder as INPUT_DIR") for source in DOWNLOADS if source not in TWO_ARCHIVES),
    *((source, "in same-named folders, one level below") for source in DOWNLOADS),
    *((source, "top folders zipped") for source in DOWNLOADS if source not in FOLDER_SOURCES),
    ("ircadb", "zips unzipped"), ("ircadb", "zips unzipped into same-named folders"),
]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Source -> (folder holding what write_source wrote, its INPUT_DIR relative to that folder)."""
    out = {}
    for source in SOURCES:
        folder = tmp_path_factory.mktemp(source)
        input_dir = write_source(source, folder / "in", [phantom.case(1, seed=3, sex="M")])
        out[source] = folder, input_dir.relative_to(folder)
    return out


def copy_of(shipped, source, tmp_path):
    folder, input_dir = shipped[source]
    shutil.copytree(folder, tmp_path / "copy", symlinks=True)
    return tmp_path / "copy" / input_dir


@pytest.mark.parametrize("source, unpacking", UNPACKED_EVERY_WAY)
def test_each_source_is_found_however_its_download_was_unpacked(shipped, tmp_path, source, unpacking):
    root = unpack_as(copy_of(shipped, source, tmp_path), unpacking)
    found = SOURCES[source].find(root, Options())
    assert len(found.cases) == 1
    image, labels = found.cases[0].read()
    assert sorted(image.GetSize()) == sorted(phantom.SHAPE)
    assert np.count_nonzero(labels.codes) > 0


@pytest.mark.parametrize("source", FOLDER_SOURCES)
def test_an_archive_read_as_folders_left_packed_is_named_in_the_error(shipped, tmp_path, source):
    root = unpack_as(copy_of(shipped, source, tmp_path), "top folders zipped")
    archive = sorted(p.name for p in root.glob("*.zip"))[0]
    with pytest.raises(InputError, match=f"no {source} cases found .*; unpack {archive}"):
        SOURCES[source].find(root, Options())


def test_convert_says_which_layout_it_found(shipped, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    nested = unpack_as(copy_of(shipped, "ircadb", tmp_path / "ircadb"), "zips unzipped into same-named folders")
    zipped = unpack_as(copy_of(shipped, "btcv", tmp_path / "btcv"), "top folders zipped")
    assert main(["convert", "ircadb", str(nested), "-d", "7"]) == 0
    assert main(["convert", "btcv", str(zipped), "-d", "8"]) == 0  # the same phantom: not into one dataset
    out = capsys.readouterr().out.splitlines()
    assert "ircadb: found 3Dircadb1/3Dircadb1.1/PATIENT_DICOM/PATIENT_DICOM + " \
           "3Dircadb1/3Dircadb1.1/MASKS_DICOM/MASKS_DICOM (1 case)" in out
    assert "btcv: found RawData.zip/RawData/Training/img/img0001.nii.gz + " \
           "RawData.zip/RawData/Training/label/label0001.nii.gz (1 case)" in out
    assert phantom.classes_at(tmp_path / "raw/Dataset007_Universal", "ircadb_1", phantom.voxel("right lung")) == \
        {"right lung"}
    assert phantom.classes_at(tmp_path / "raw/Dataset008_Universal", "btcv_0001", phantom.voxel("aorta")) == {"aorta"}


def test_a_link_loop_and_a_linked_download_folder(shipped, tmp_path):
    download = copy_of(shipped, "msd-spleen", tmp_path)
    root = tmp_path / "links"
    root.mkdir()
    (root / "Task09_Spleen").symlink_to(download / "Task09_Spleen")  # the data elsewhere, linked
    (root / "loop").symlink_to(root)
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    found = SOURCES["msd-spleen"].find(root, Options())
    assert [c.source_id for c in found.cases] == ["1"]
    assert sitk.GetArrayFromImage(found.cases[0].read()[0]).shape == phantom.SHAPE


def test_gibson_labels_in_a_folder_of_any_name(tmp_path):
    btcv = write_source("btcv", tmp_path / "btcv", [phantom.case(2, seed=17, gibson=True)])
    labels = (btcv / "label_btcv_multiorgan").rename(tmp_path / "my gibson labels")
    found = SOURCES["btcv"].find(btcv, Options(gibson=labels))
    assert found.cases[0].files[1] == labels / "label0002.nii.gz"
    assert "duodenum" in found.cases[0].annotated
