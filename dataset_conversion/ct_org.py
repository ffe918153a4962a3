"""CT-ORG (TCIA): ``OrganSegmentations/volume-N.nii.gz`` + ``labels-N.nii.gz``, float32 files.

1 liver, 2 bladder, 3 lungs (split into right/left), 4 kidneys (split), 5 bone and 6 brain (not
universal classes: background). Float labels are rounded; non-integers are an error.
"""
from dataset_conversion.source import PairedSource

SOURCE = PairedSource(
    name="ct-org",
    summary="CT-ORG, liver, bladder, lungs and kidneys (sides from world coordinates)",
    image=r"volume-(\d+)\.nii(?:\.gz)?",
    label=r"labels-(\d+)\.nii(?:\.gz)?",
    values={1: ("liver",), 2: ("bladder",), 3: ("lung",), 4: ("kidney",), 5: (), 6: ()},
    annotated=("liver", "bladder", "lung", "kidney"),
    example="OrganSegmentations/volume-0.nii.gz",
)
