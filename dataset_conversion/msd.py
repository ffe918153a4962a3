"""Medical Segmentation Decathlon CT tasks: ``TaskXX_Name/{imagesTr,labelsTr}/<prefix>_<n>.nii.gz``.

The tarballs hold macOS ``._*`` files, never read (hidden names are skipped). Tasks 06, 08 and
10 label lesions (and vessels) only, without their host organ.
"""
from dataset_conversion.source import PairedSource

TASKS = (
    # name, task folder, file prefix, value -> classes, summary
    ("msd-liver", "Task03_Liver", "liver", {1: ("liver",), 2: ("liver", "liver tumor")},
     "liver and liver tumour"),
    ("msd-lung", "Task06_Lung", "lung", {1: ("lung tumor",)}, "lung tumour (no lung label)"),
    ("msd-pancreas", "Task07_Pancreas", "pancreas", {1: ("pancreas",), 2: ("pancreas", "pancreas tumor")},
     "pancreas and pancreas tumour"),
    ("msd-hepaticvessel", "Task08_HepaticVessel", "hepaticvessel",
     {1: ("hepatic vessel",), 2: ("hepatic vessel tumor",)}, "hepatic vessel and tumour (no liver label)"),
    ("msd-spleen", "Task09_Spleen", "spleen", {1: ("spleen",)}, "spleen"),
    ("msd-colon", "Task10_Colon", "colon", {1: ("colon tumor",)}, "colon tumour (no colon label)"),
)

SOURCES = tuple(
    PairedSource(
        name=name,
        summary=f"MSD {task}, {summary}",
        image=rf"imagesTr/{prefix}_(\d+)\.nii\.gz",
        label=rf"labelsTr/{prefix}_(\d+)\.nii\.gz",
        values=values,
        annotated=tuple(dict.fromkeys(c for names in values.values() for c in names)),
        example=f"{task}/imagesTr/{prefix}_001.nii.gz",
    )
    for name, task, prefix, values, summary in TASKS
)
