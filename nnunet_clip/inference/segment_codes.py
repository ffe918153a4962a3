"""Standard codes of the classes in a DICOM SEG: SNOMED CT concepts as pydicom names them.

Each segment says what it is by a category (CID 7150) and a type (CID 7151), as the DICOM
Segment Description macro asks. Organs of a side carry a laterality modifier of their type (as
dcmqi and TotalSegmentator write it); tumours and cysts are a morphologically abnormal
structure with the organ they lie in as anatomic region. A class that is two structures has
their common concept as type and the two as primary anatomic structures. Names the model was
not trained on (zero-shot prompts) have no standard code: they get one of a private coding
scheme (``99`` prefix, PS3.16 8.2), with the name as value and meaning.
"""
from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.coding import Code
from pydicom.sr.codedict import codes

SCT = codes.SCT
ANATOMY = SCT.AnatomicalStructure
ABNORMAL = SCT.MorphologicallyAbnormalStructure
PRIVATE_SCHEME = "99NNUNETCLIP"
"""Coding scheme designator of names without a standard code (private: ``99`` prefix)."""


@dataclass(frozen=True)
class SegmentCoding:
    """What a segment is, in codes: category, type, and what qualifies or locates it."""

    category: Code
    type: Code
    laterality: Code | None = None
    """Modifier of ``type``: SCT Right or Left."""
    regions: tuple[Code, ...] = ()
    """Anatomic regions the structure lies in (for a tumour: its organ)."""
    structures: tuple[Code, ...] = ()
    """Primary anatomic structures, where the class is more than one."""


def _organ(type_: Code, laterality: Code | None = None) -> SegmentCoding:
    return SegmentCoding(ANATOMY, type_, laterality)


def _lesion(type_: Code, organ: Code) -> SegmentCoding:
    return SegmentCoding(ABNORMAL, type_, regions=(organ,))


CODES: dict[str, SegmentCoding] = {
    "spleen": _organ(SCT.Spleen),
    "right kidney": _organ(SCT.Kidney, SCT.Right),
    "left kidney": _organ(SCT.Kidney, SCT.Left),
    "gall bladder": _organ(SCT.Gallbladder),
    "esophagus": _organ(SCT.Esophagus),
    "liver": _organ(SCT.Liver),
    "stomach": _organ(SCT.Stomach),
    "aorta": _organ(SCT.Aorta),
    "postcava": _organ(SCT.InferiorVenaCava),
    "portal vein and splenic vein": SegmentCoding(ANATOMY, SCT.Vein, structures=(SCT.PortalVein, SCT.SplenicVein)),
    "pancreas": _organ(SCT.Pancreas),
    "right adrenal gland": _organ(SCT.AdrenalGland, SCT.Right),
    "left adrenal gland": _organ(SCT.AdrenalGland, SCT.Left),
    "duodenum": _organ(SCT.Duodenum),
    "hepatic vessel": SegmentCoding(ANATOMY, SCT.BloodVessel, regions=(SCT.Liver,)),
    "right lung": _organ(SCT.Lung, SCT.Right),
    "left lung": _organ(SCT.Lung, SCT.Left),
    "colon": _organ(SCT.Colon),
    "intestine": _organ(SCT.SmallIntestine),  # the small bowel (WORD's "intestine", docs/datasets.md)
    "rectum": _organ(SCT.Rectum),
    "bladder": _organ(SCT.Bladder),
    "prostate": _organ(SCT.Prostate),
    "left head of femur": _organ(SCT.HeadOfFemur, SCT.Left),
    "right head of femur": _organ(SCT.HeadOfFemur, SCT.Right),
    "celiac trunk": _organ(SCT.CeliacAxis),
    "kidney tumor": _lesion(SCT.Neoplasm, SCT.Kidney),
    "liver tumor": _lesion(SCT.Neoplasm, SCT.Liver),
    "pancreas tumor": _lesion(SCT.Neoplasm, SCT.Pancreas),
    "hepatic vessel tumor": _lesion(SCT.Neoplasm, SCT.Liver),
    "lung tumor": _lesion(SCT.Neoplasm, SCT.Lung),
    "colon tumor": _lesion(SCT.Neoplasm, SCT.Colon),
    "kidney cyst": _lesion(SCT.Cyst, SCT.Kidney),
}
"""Every universal class (``taxonomy.CLASS_NAMES``) -> its codes."""


def segment_coding(name: str) -> SegmentCoding:
    """The codes of a class: standard ones for the universal classes, private ones for other names."""
    if name in CODES:
        return CODES[name]
    return SegmentCoding(Code("prompt", PRIVATE_SCHEME, "Text prompt"), Code(name, PRIVATE_SCHEME, name[:64]))
