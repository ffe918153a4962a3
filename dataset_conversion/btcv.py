"""BTCV (Multi-Atlas Labeling Beyond the Cranial Vault, abdomen; Synapse syn3193805).

``RawData/Training/{img,label}/{img,label}NNNN.nii.gz`` and ``RawData/Testing/img/``. Labels 1-13
are the universal classes 1-13. Where Gibson's relabelling (``label_btcv_multiorgan``) is found it
is used instead: classes 1-14 (adds duodenum) for training cases, the 8 Gibson organs for the
test cases 0061-0080 (CLIP's ``01_2`` rule).
"""
from __future__ import annotations

from pathlib import Path

from dataset_conversion import discover, gibson
from dataset_conversion.labels import value_table
from dataset_conversion.source import Options, PairedSource
from nnunet_clip import taxonomy

FIRST_TEST_ID = 61
GIBSON_ALL = value_table(gibson.ALL_VALUES)
GIBSON_TEST = value_table(gibson.EIGHT_ORGANS)


class Btcv(PairedSource):
    """BTCV with Synapse labels, or Gibson's where present."""

    def labels(self, root: Path, paths: list[str], options: Options) -> dict[str, Path]:
        return {**discover.match(root, paths, self.label),
                **gibson.find_labels(root, options, "label_btcv_multiorgan")}

    def labelling(self, source_id: str, label: Path, options: Options):
        if label.parent.name == "label" and label.parent.parent.name == "Training":
            return self.values, self.annotated
        table = GIBSON_ALL if int(source_id) < FIRST_TEST_ID else GIBSON_TEST
        return table, tuple(taxonomy.sort_classes(c for names in table.values() for c in names))

    def classes(self) -> tuple[str, ...]:
        return taxonomy.CLASS_NAMES[:14]


SOURCE = Btcv(
    name="btcv",
    summary="BTCV abdomen (Synapse RawData), 13 organs; Gibson's 14-organ labels if found",
    image=r"(?:Training|Testing)/img/img(\d{4})\.nii\.gz",
    label=r"Training/label/label(\d{4})\.nii\.gz",
    values={v: (taxonomy.CLASS_NAMES[v - 1],) for v in range(1, 14)},
    annotated=taxonomy.CLASS_NAMES[:13],
    example="RawData/Training/img/img0001.nii.gz",
    unlabelled_images=True,
)
