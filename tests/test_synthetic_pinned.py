"""The default phantoms and the demo's default sources stay bit-identical: models are measured on them.

The hashes were taken before the tumour cohorts were added (commit 3f5236b). The tumour intensities
of a default phantom follow the iteration order of a frozenset of names (``phantom.HOSTED_NAMES``),
which depends on PYTHONHASHSEED, so the hashes are computed in a subprocess with PYTHONHASHSEED=0.
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

PINNED = {"phantoms": ["6bff92cf991b7245", "afe3ba997873f9cf", "3eac8af1e906f0cc"], "small": "ca93fef1c7c69714",
          "heldout": "7856a84f3651f26f", "sources": "d64abc8f05d809eb"}


def test_default_phantoms_sources_and_heldout_are_unchanged():
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", HASH_SCRIPT], env=env, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == PINNED


def test_demo_sources_are_unchanged():
    assert [(s.name, s.cases, s.orientation) for s in DEMO_SOURCES] == [
        ("totalsegmentator", 10, "RAS"), ("amos22", 4, "LPS"), ("btcv", 3, "RAS"), ("word", 8, "LPS"),
        ("abdomenct-12organ", 6, "RAI"), ("msd-liver", 2, "RAS"), ("msd-spleen", 1, "RAS"),
        ("msd-pancreas", 2, "LPS"), ("msd-hepaticvessel", 4, "RAS"), ("msd-lung", 2, "LPS"),
        ("msd-colon", 2, "RAS"), ("kits23", 3, "LPS")]
