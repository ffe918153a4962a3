"""LiTS (Liver Tumor Segmentation Challenge, CodaLab 17094).

``Training Batch 1/volume-0.nii`` + ``segmentation-0.nii`` ... ``Training Batch 2/…-130.nii``
(uncompressed). 1 liver, 2 tumour (a tumour voxel is also liver). Volumes 28-47 carry identity
affines; they are 3D-IRCADb's scans, recognised as duplicates from their voxels.
"""
from dataset_conversion.source import PairedSource

SOURCE = PairedSource(
    name="lits",
    summary="LiTS training batches 1-2, liver and liver tumour",
    image=r"volume-(\d+)\.nii(?:\.gz)?",
    label=r"segmentation-(\d+)\.nii(?:\.gz)?",
    values={1: ("liver",), 2: ("liver", "liver tumor")},
    annotated=("liver", "liver tumor"),
    example="Training Batch 1/volume-0.nii",
)
