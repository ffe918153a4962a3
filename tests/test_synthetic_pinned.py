"""The default phantoms and the demo's default sources stay bit-identical: models are measured on them.

The hashes were taken when the tumour intensities stopped following the iteration order of a frozenset
of names (which changed with PYTHONHASHSEED from one process to the next); they are computed in
subprocesses with two different hash seeds.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from nnunet_clip.synthetic.sources import DEMO_SOURCES

HASH_SCRIPT = r'''
import hashlib, json, sys, tempfile
from pathlib import Path
import numpy as np, SimpleITK as sitk
from nnunet_clip.synthetic.phantom import generate_phantom
from nnunet_clip.synthetic.sources import SyntheticSource, write_heldout, write_sources
from nnunet_clip.taxonomy import CLASS_NAMES

def update(h, image):
    h.update(sitk.GetArrayViewFromImage(image).tobytes())
    h.update(np.array([*image.GetSpacing(), *image.GetOrigin(), *image.GetDirection()]).tobytes())

def phantom_hash(p):
    h = hashlib.sha256()
    update(h, p.image)
    h.update(p.sex.encode())
    for name in CLASS_NAMES:
        h.update(np.packbits(p.masks[name]).tobytes())
    return h.hexdigest()[:16]

def folder_hash(root):
    h = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*.nii.gz") if not p.name.startswith("._")):
        h.update(str(path.relative_to(root)).encode())
        update(h, sitk.ReadImage(str(path)))
    return h.hexdigest()[:16]

out = {"phantoms": [phantom_hash(generate_phantom(s)) for s in (0, 1, 10_000)],
       "small": phantom_hash(generate_phantom(5, shape=(16, 20, 24)))}
with tempfile.TemporaryDirectory() as tmp:
    write_heldout(Path(tmp) / "heldout", 2)
    out["heldout"] = folder_hash(Path(tmp) / "heldout")
    write_sources(Path(tmp) / "sources", (SyntheticSource("msd-liver", 2, "RAS"), SyntheticSource("kits23", 1)), seed=3)
    out["sources"] = folder_hash(Path(tmp) / "sources")
print(json.dumps(out))
'''

PINNED = {"phantoms": ["ca818869a1bebf60", "7a284fd9d52f3caa", "8a22b5cada3ea389"], "small": "476b0b13332d6087",
          "heldout": "68bb7ae24d1a74f6", "sources": "b2555d0f8e81537f"}


def test_default_phantoms_sources_and_heldout_are_unchanged_in_every_process():
    for hash_seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(Path(__file__).parents[1])}
        result = subprocess.run([sys.executable, "-c", HASH_SCRIPT], env=env, capture_output=True, text=True,
                                check=True)
        assert json.loads(result.stdout.strip().splitlines()[-1]) == PINNED, hash_seed


def test_demo_sources_are_unchanged():
    assert [(s.name, s.cases, s.orientation) for s in DEMO_SOURCES] == [
        ("totalsegmentator", 10, "RAS"), ("amos22", 4, "LPS"), ("btcv", 3, "RAS"), ("word", 8, "LPS"),
        ("abdomenct-12organ", 6, "RAI"), ("msd-liver", 2, "RAS"), ("msd-spleen", 1, "RAS"),
        ("msd-pancreas", 2, "LPS"), ("msd-hepaticvessel", 4, "RAS"), ("msd-lung", 2, "LPS"),
        ("msd-colon", 2, "RAS"), ("kits23", 3, "LPS")]
