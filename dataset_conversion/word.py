"""WORD (Whole abdominal ORgan Dataset, V0.1.0).

``WORD-V0.1.0/{imagesTr,labelsTr,imagesVal,labelsVal,imagesTs}/word_NNNN.nii.gz``; test labels
come separately as ``labelsTs/`` (searched below INPUT_DIR too). Labels are uint8, or uint16 in
word_0074 and word_0129. Label 12 holds both adrenal glands (split by side).
"""
from dataset_conversion.source import PairedSource

SOURCE = PairedSource(
    name="word",
    summary="WORD, 16 abdominal organs (adrenal glands split by side)",
    image=r"images(?:Tr|Val|Ts)/word_(\d{4})\.nii\.gz",
    label=r"labels(?:Tr|Val|Ts)/word_(\d{4})\.nii\.gz",
    values={1: ("liver",), 2: ("spleen",), 3: ("left kidney",), 4: ("right kidney",), 5: ("stomach",),
            6: ("gall bladder",), 7: ("esophagus",), 8: ("pancreas",), 9: ("duodenum",), 10: ("colon",),
            11: ("intestine",), 12: ("adrenal gland",), 13: ("rectum",), 14: ("bladder",),
            15: ("left head of femur",), 16: ("right head of femur",)},
    annotated=("liver", "spleen", "left kidney", "right kidney", "stomach", "gall bladder", "esophagus",
               "pancreas", "duodenum", "colon", "intestine", "adrenal gland", "rectum", "bladder",
               "left head of femur", "right head of femur"),
    example="WORD-V0.1.0/imagesTr/word_0002.nii.gz",
    unlabelled_images=True,
)
