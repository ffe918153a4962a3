"""AbdomenCT-1K, its 12-organ subset, and the FLARE22 labelled training set.

* AbdomenCT-1K: ``AbdomenCT-1K-ImagePart{1,2,3}/Case_NNNNN_0000.nii.gz`` + ``Mask/Case_NNNNN.nii.gz``;
  1 liver, 2 kidneys (split by side), 3 spleen, 4 pancreas.
* AbdomenCT-12organ: ``Organ12_NNNN_0000.nii.gz`` + ``Organ12_NNNN.nii.gz`` (folder names vary);
  12 organs, kidneys split by side.
* FLARE22: ``FLARE22Train/{images,labels}/FLARE22_Tr_NNNN[_0000].nii.gz``; 13 organs, sided.
"""
from dataset_conversion.labels import classes_of
from dataset_conversion.source import PairedSource

ABDOMENCT_1K = PairedSource(
    name="abdomenct-1k",
    summary="AbdomenCT-1K, liver, kidneys (split by side), spleen, pancreas",
    image=r"Case_(\d{5})_0000\.nii\.gz",
    label=r"Mask/Case_(\d{5})\.nii\.gz",
    values={1: ("liver",), 2: ("kidney",), 3: ("spleen",), 4: ("pancreas",)},
    annotated=("liver", "kidney", "spleen", "pancreas"),
    example="AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz",
    unlabelled_images=True,
)

_TWELVE = {1: ("liver",), 2: ("kidney",), 3: ("spleen",), 4: ("pancreas",), 5: ("aorta",),
           6: ("postcava",), 7: ("stomach",), 8: ("gall bladder",), 9: ("esophagus",),
           10: ("right adrenal gland",), 11: ("left adrenal gland",), 12: ("celiac trunk",)}

ABDOMENCT_12ORGAN = PairedSource(
    name="abdomenct-12organ",
    summary="AbdomenCT-1K 12-organ subset (Organ12_*), kidneys split by side",
    image=r"Organ12_(\d{4})_0000\.nii\.gz",
    label=r"Organ12_(\d{4})\.nii\.gz",
    values=_TWELVE,
    annotated=classes_of(_TWELVE),
    example="Organ-12-Subset/Mask/Organ12_0001.nii.gz",
)

_FLARE = {1: ("liver",), 2: ("right kidney",), 3: ("spleen",), 4: ("pancreas",), 5: ("aorta",),
          6: ("postcava",), 7: ("right adrenal gland",), 8: ("left adrenal gland",), 9: ("gall bladder",),
          10: ("esophagus",), 11: ("stomach",), 12: ("duodenum",), 13: ("left kidney",)}

FLARE22 = PairedSource(
    name="flare22",
    summary="FLARE22 labelled training set, 13 organs",
    image=r"FLARE22_Tr_(\d{4})_0000\.nii\.gz",
    label=r"FLARE22_Tr_(\d{4})\.nii\.gz",
    values=_FLARE,
    annotated=classes_of(_FLARE),
    example="FLARE22Train/images/FLARE22_Tr_0001_0000.nii.gz",
)
