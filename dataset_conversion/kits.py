"""KiTS19, KiTS21 and KiTS23 (Kidney Tumor Segmentation challenges; github.com/neheller).

``case_NNNNN/imaging.nii.gz`` with ``segmentation.nii.gz`` (KiTS19 ``data/``, KiTS23 ``dataset/``)
or ``aggregated_{MAJ,OR,AND}_seg.nii.gz`` (KiTS21 ``kits21/data/``). Arrays are stored I-P-L
(slice first). 1 kidney, 2 tumour, 3 cyst (KiTS21/23); tumours and cysts are kidney voxels too, and
the kidney is split into right and left in world coordinates with them.
"""
from __future__ import annotations

from pathlib import Path

from dataset_conversion import discover
from dataset_conversion.source import Options, PairedSource

IMAGE = r"case_(\d{5})/imaging\.nii\.gz"
KIDNEY_TUMOUR = {1: ("kidney",), 2: ("kidney", "kidney tumor")}
KIDNEY_TUMOUR_CYST = {**KIDNEY_TUMOUR, 3: ("kidney", "kidney cyst")}
AGGREGATIONS = {"majority": "MAJ", "or": "OR"}
"""``--kits-aggregation`` -> KiTS21 file: majority vote (the official ground truth) or the union
of the annotators (what CLIP trained on)."""


class KiTS21(PairedSource):
    """KiTS21, with the aggregated label file chosen by ``--kits-aggregation``."""

    def labels(self, root: Path, paths: list[str], options: Options) -> dict[str, Path]:
        code = AGGREGATIONS[options.kits_aggregation]
        return discover.match(root, paths, rf"case_(\d{{5}})/aggregated_{code}_seg\.nii\.gz")


KITS19 = PairedSource(
    name="kits19",
    summary="KiTS19, kidneys (split by side) and kidney tumour",
    image=IMAGE,
    label=r"case_(\d{5})/segmentation\.nii\.gz",
    values=KIDNEY_TUMOUR,
    annotated=("kidney", "kidney tumor"),
    example="kits19/data/case_00000/imaging.nii.gz",
    unlabelled_images=True,
)

KITS21 = KiTS21(
    name="kits21",
    summary="KiTS21, kidneys (split by side), tumour, cyst; --kits-aggregation majority|or",
    image=IMAGE,
    label=r"case_(\d{5})/aggregated_MAJ_seg\.nii\.gz",
    values=KIDNEY_TUMOUR_CYST,
    annotated=("kidney", "kidney tumor", "kidney cyst"),
    example="kits21/kits21/data/case_00000/aggregated_MAJ_seg.nii.gz",
)

KITS23 = PairedSource(
    name="kits23",
    summary="KiTS23, kidneys (split by side), tumour, cyst",
    image=IMAGE,
    label=r"case_(\d{5})/segmentation\.nii\.gz",
    values=KIDNEY_TUMOUR_CYST,
    annotated=("kidney", "kidney tumor", "kidney cyst"),
    example="kits23/dataset/case_00000/segmentation.nii.gz",
)
