"""evaluate_folders, the outputs and ``nnunet-clip evaluate`` on a tiny partially labelled folder."""
import csv
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from nnunet_clip.cli import main
from nnunet_clip.errors import InputError
from nnunet_clip.evaluation.evaluate_folder import evaluate_folders
from nnunet_clip.evaluation.report import write_outputs
from nnunet_clip.taxonomy import atom_table, dataset_labels, region_class_names

SHAPE = (10, 24, 24)  # z, y, x
SPACING = (1.5, 1.5, 2.0)  # x, y, z (SimpleITK order): a voxel is 4.5 mm3
LABELS, _ = dataset_labels(["liver", "spleen", "liver tumor"])
LIVER = (slice(2, 8), slice(2, 12), slice(2, 12))
LIVER_SHIFTED = (slice(2, 8), slice(2, 12), slice(4, 14))  # 2 voxels (3 mm) in x: DSC 0.8
SPLEEN = (slice(2, 8), slice(14, 20), slice(14, 20))
TUMOR = (slice(3, 6), slice(4, 9), slice(4, 9))  # 75 voxels = 0.3375 ml
SPECK = (slice(4, 5), slice(5, 6), slice(5, 6))  # 1 voxel = 0.0045 ml, under the 0.1 ml minimum


def label_map(labels, **boxes):
    """Label map whose classes cover the given boxes (a tumour lies inside the liver box)."""
    masks = {name.replace("_", " "): np.zeros(SHAPE, bool) for name in boxes}
    for name, box in boxes.items():
        masks[name.replace("_", " ")][box] = True
    value_of = {atom: value for value, atom in atom_table(labels).items()}
    out = np.zeros(SHAPE, np.uint8)
    for atom, value in value_of.items():
        if atom <= masks.keys():
            inside = np.logical_and.reduce([masks[n] for n in atom])
            outside = [masks[n] for n in masks if n not in atom]
            out[inside & ~np.logical_or.reduce(outside, initial=False)] = value
    return out


def write(path, array, spacing=SPACING):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


@pytest.fixture
def folders(tmp_path):
    """Cases A-D annotate liver and liver tumor (tumour TP, TN with a speck, FN, FP); E annotates the
    spleen only, and its prediction has a big liver tumour that must not count."""
    ref, pred = tmp_path / "labelsTr", tmp_path / "pred"
    cases = {  # case: (reference boxes, predicted boxes)
        "A": ({"liver": LIVER, "liver_tumor": TUMOR}, {"liver": LIVER, "liver_tumor": TUMOR}),
        "B": ({"liver": LIVER}, {"liver": LIVER_SHIFTED, "liver_tumor": SPECK}),
        "C": ({"liver": LIVER, "liver_tumor": TUMOR}, {"liver": LIVER}),
        "D": ({"liver": LIVER}, {"liver": LIVER, "liver_tumor": TUMOR}),
        "E": ({"spleen": SPLEEN}, {"spleen": SPLEEN, "liver": LIVER, "liver_tumor": TUMOR}),
    }
    for case, (ref_boxes, pred_boxes) in cases.items():
        write(ref / f"{case}.nii.gz", label_map(LABELS, **ref_boxes))
        write(pred / f"{case}.nii.gz", label_map(LABELS, **pred_boxes))
    dataset = {"labels": LABELS, "file_ending": ".nii.gz",
               "annotated_classes": {**{c: ["liver", "liver tumor"] for c in "ABCD"}, "E": ["spleen"]}}
    (tmp_path / "dataset.json").write_text(json.dumps(dataset))
    return ref, pred, dataset


def test_scores_partial_labels_and_detection(folders):
    ref, pred, dataset = folders
    m = evaluate_folders(ref, pred, dataset, progress=False)
    assert set(m["cases"]) == set("ABCDE")
    assert set(m["cases"]["E"]) == {"spleen"}  # not annotated: absent, not a miss
    assert set(m["cases"]["A"]) == {"liver", "liver tumor"}
    a, b, c = m["cases"]["A"], m["cases"]["B"], m["cases"]["C"]
    assert a["liver"]["dsc"] == 1.0 and a["liver"]["nsd"] == 1.0 and a["liver tumor"]["dsc"] == 1.0
    assert b["liver"]["dsc"] == pytest.approx(0.8)
    assert b["liver"]["nsd"] == 1.0  # 3 mm shift, 3 mm default liver tolerance
    assert b["liver"]["ref_voxels"] == 600 and b["liver"]["pred_voxels"] == 600
    assert b["liver tumor"]["dsc"] == 0.0 and b["liver tumor"]["pred_voxels"] == 1
    assert b["liver tumor"]["pred_positive"] is False
    assert b["liver tumor"]["pred_largest_component_ml"] == pytest.approx(0.0045)
    assert c["liver tumor"]["dsc"] == 0.0 and c["liver tumor"]["ref_positive"] is True
    assert c["liver"]["dsc"] == 1.0  # the tumour voxels are liver too
    det = m["tumor_detection"]["liver tumor"]
    assert (det["tp"], det["fn"], det["tn"], det["fp"], det["cases"]) == (1, 1, 1, 1, 4)
    assert det["sensitivity"] == 0.5 and det["specificity"] == 0.5 and det["harmonic_mean"] == 0.5
    liver = m["per_class"]["liver"]
    assert liver["cases"] == 4 and liver["dsc"]["count"] == 4
    assert liver["dsc"]["mean"] == pytest.approx((3 + 0.8) / 4) and liver["dsc"]["median"] == 1.0
    tumor = m["per_class"]["liver tumor"]
    assert tumor["dsc"]["count"] == 4  # A: 1; B and D: ref empty, pred not: 0; C: missed: 0
    assert tumor["both_empty"] == 0 and tumor["dsc"]["mean"] == pytest.approx(1 / 4)
    assert m["mean_organ_dsc"] == pytest.approx(((3 + 0.8) / 4 + 1.0) / 2)  # liver, spleen
    assert m["settings"]["tolerance_mm"] == {"liver": 3.0, "spleen": 3.0, "liver tumor": 5.0}


def test_min_tumor_size_and_tolerance_overrides(folders):
    ref, pred, dataset = folders
    m = evaluate_folders(ref, pred, dataset, min_tumor_ml=0.0, tolerances={"liver": 1.0}, progress=False)
    det = m["tumor_detection"]["liver tumor"]
    assert (det["tp"], det["fn"], det["tn"], det["fp"]) == (1, 1, 0, 2)  # B's speck now counts
    assert m["cases"]["B"]["liver"]["nsd"] < 1.0 and m["cases"]["B"]["liver"]["tolerance_mm"] == 1.0
    m = evaluate_folders(ref, pred, dataset, min_tumor_ml=0.4, progress=False)  # above the 0.3375 ml tumour
    assert m["tumor_detection"]["liver tumor"]["tp"] == 0


def test_both_empty_is_undefined_and_left_out(folders, tmp_path):
    ref, pred, dataset = folders
    write(pred / "D.nii.gz", label_map(LABELS, liver=LIVER))
    m = evaluate_folders(ref, pred, dataset, progress=False)
    d = m["cases"]["D"]["liver tumor"]
    assert d["dsc"] is None and d["nsd"] is None and d["ref_voxels"] == 0
    assert m["per_class"]["liver tumor"]["both_empty"] == 1
    assert m["per_class"]["liver tumor"]["dsc"]["count"] == 3 and m["per_class"]["liver tumor"]["cases"] == 4
    assert m["tumor_detection"]["liver tumor"]["tn"] == 2


def test_prediction_labels_json_renames_values(folders):
    """Our predictor's maps: only the predicted classes, numbered their own way."""
    ref, pred, dataset = folders
    own = {"background": 0, "liver": [1, 2], "liver tumor": [2]}
    for case, boxes in {"A": {"liver": LIVER, "liver_tumor": TUMOR}, "B": {"liver": LIVER_SHIFTED},
                        "C": {"liver": LIVER}, "D": {"liver": LIVER}, "E": {"liver": LIVER}}.items():
        write(pred / f"{case}.nii.gz", label_map(own, **boxes))
    (pred / "labels.json").write_text(json.dumps(own))
    m = evaluate_folders(ref, pred, dataset, progress=False)
    assert m["classes_not_in_prediction"] == ["spleen"]
    assert "E" in m["cases"] and m["cases"]["E"] == {}
    assert m["cases"]["A"]["liver tumor"]["dsc"] == 1.0 and m["cases"]["A"]["liver"]["dsc"] == 1.0
    assert m["cases"]["B"]["liver"]["dsc"] == pytest.approx(0.8)
    det = m["tumor_detection"]["liver tumor"]
    assert (det["tp"], det["fn"], det["tn"], det["fp"]) == (1, 1, 2, 0)
    assert m["settings"]["prediction_labels"].endswith("labels.json")


def test_one_line_errors(folders):
    ref, pred, dataset = folders
    write(pred / "C.nii.gz", np.zeros((10, 24, 23), np.uint8))
    with pytest.raises(InputError, match=r"C\.nii\.gz: its grid \(shape \(10, 24, 23\)") as e:
        evaluate_folders(ref, pred, dataset, progress=False)
    assert "\n" not in str(e.value)
    write(pred / "C.nii.gz", np.zeros(SHAPE, np.uint8), spacing=(1.5, 1.5, 3.0))
    with pytest.raises(InputError, match=r"C\.nii\.gz: its grid .*spacing \(3\.0, 1\.5, 1\.5\)"):
        evaluate_folders(ref, pred, dataset, progress=False)
    (pred / "C.nii.gz").unlink()
    with pytest.raises(InputError, match=r"C\.nii\.gz: missing prediction"):
        evaluate_folders(ref, pred, dataset, progress=False)
    m = evaluate_folders(ref, pred, dataset, missing_as_empty=True, progress=False)
    assert m["cases"]["C"]["liver"]["dsc"] == 0.0 and m["settings"]["missing_predictions"] == ["C"]
    del dataset["annotated_classes"]["E"]
    with pytest.raises(InputError, match="'E' is missing from 'annotated_classes'"):
        evaluate_folders(ref, pred, dataset, missing_as_empty=True, progress=False)


def test_unmatched_prediction_warns_and_no_annotations_means_all(folders):
    ref, pred, dataset = folders
    write(pred / "Z.nii.gz", np.zeros(SHAPE, np.uint8))
    del dataset["annotated_classes"]
    with pytest.warns(UserWarning) as record:
        m = evaluate_folders(ref, pred, dataset, progress=False)
    messages = " ".join(str(w.message) for w in record)
    assert "without reference ignored: Z" in messages and "no 'annotated_classes'" in messages
    assert m["predictions_without_reference"] == ["Z"] and "Z" not in m["cases"]
    assert set(m["cases"]["E"]) == {"liver", "spleen", "liver tumor"}
    assert m["cases"]["E"]["liver"]["dsc"] == 0.0  # now scored: the reference has no liver


def test_outputs_are_strict_json_csv_and_png(folders, tmp_path):
    ref, pred, dataset = folders
    m = evaluate_folders(ref, pred, dataset, progress=False)
    m["cases"]["A"]["liver tumor"]["nsd"] = None  # an undefined value must stay null/empty
    out = tmp_path / "out"
    paths = write_outputs(m, out / "run.json")
    names = ["run.json", "run.csv", "run_detection.csv", "run_lesions.csv", "run_dsc_boxplot.png", "run_roc.png"]
    assert [p.name for p in paths] == names and sorted(p.name for p in out.iterdir()) == sorted(names)
    loaded = json.loads((out / "run.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert loaded == m
    rows = list(csv.DictReader((out / "run.csv").open()))
    assert len(rows) == sum(len(c) for c in m["cases"].values()) == 9
    row = next(r for r in rows if r["case"] == "A" and r["class"] == "liver tumor")
    assert row["nsd"] == "" and float(row["dsc"]) == 1.0 and row["pred_positive"] == "True"
    assert (row["ref_lesions"], row["detected_lesions"], row["false_positive_lesions"]) == ("1", "1", "0")
    assert next(r for r in rows if r["class"] == "spleen")["pred_largest_component_ml"] == ""
    for png in ("run_dsc_boxplot.png", "run_roc.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_detection_tables_load_in_pandas(folders, tmp_path):
    """A: found; B: a speck under 0.1 ml, not a lesion; C: missed; D: a false-positive lesion."""
    ref, pred, dataset = folders
    m = evaluate_folders(ref, pred, dataset, progress=False)
    write_outputs(m, tmp_path / "m.json")
    detection = pd.read_csv(tmp_path / "m_detection.csv").set_index("class")
    row = detection.loc["liver tumor"]
    assert (row["tp"], row["fn"], row["tn"], row["fp"], row["harmonic_mean"]) == (1, 1, 1, 1, 0.5)
    assert (row["lesions"], row["detected_lesions"], row["lesion_recall"]) == (2, 1, 0.5)
    assert row["false_positive_lesions"] == 1 and row["false_positive_lesions_per_case"] == 0.25
    assert row["lesion_recall_<10mm"] == 0.5 and np.isnan(row["lesion_recall_10-20mm"])  # no such lesions: empty
    # scores without probabilities: largest component ml. A 0.3375 and C 0 (positive) against B 0.0045 and
    # D 0.3375 (negative): A beats B, ties D; C loses both: 1.5 of 4 pairs
    assert row["presence_score"] == "largest component ml" and row["auc"] == pytest.approx(0.375)
    lesions = pd.read_csv(tmp_path / "m_lesions.csv")
    assert lesions[["case", "detected", "size_bin_mm"]].values.tolist() == [["A", True, "<10"], ["C", False, "<10"]]
    assert lesions["volume_ml"].tolist() == pytest.approx([0.3375, 0.3375])
    assert lesions["diameter_mm"].iloc[0] == pytest.approx((6 * 337.5 / np.pi) ** (1 / 3), abs=0.01)
    cases = pd.read_csv(tmp_path / "m.csv")
    assert cases.loc[(cases["case"] == "D") & (cases["class"] == "liver tumor"), "false_positive_lesions"].item() == 1


def test_reference_without_lesions_has_specificity_but_no_sensitivity(folders):
    ref, pred, dataset = folders
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cases left out have references: no "without reference" warning
        m = evaluate_folders(ref, pred, dataset, cases=["B", "D"], progress=False)  # both tumour-free
    assert m["predictions_without_reference"] == []
    d = m["tumor_detection"]["liver tumor"]
    assert d["specificity"] == 0.5 and d["sensitivity"] is None and d["harmonic_mean"] is None
    assert d["lesion_level"]["recall"] is None and d["lesion_level"]["lesions"] == 0
    assert d["lesion_level"]["false_positives_per_case"] == 0.5
    assert d["roc"]["auc"] is None


def write_probabilities(pred, case, array):
    """``nnunet-clip predict --probabilities``' file of the liver tumour: uint8, 255 × p."""
    write(pred / case / "probabilities" / "liver_tumor.nii.gz", array.astype(np.uint8))


def test_presence_score_from_predicted_probabilities_inside_the_host(folders):
    ref, pred, dataset = folders
    values = {"A": 230, "B": 100, "C": 140, "D": 60}  # inside the predicted liver
    for case, value in values.items():
        p = np.zeros(SHAPE, np.uint8)
        p[5, 6, 6] = value
        p[0, 0, 0] = 250  # outside liver and tumour: not read
        write_probabilities(pred, case, p)
    m = evaluate_folders(ref, pred, dataset, progress=False)
    assert {c: m["cases"][c]["liver tumor"]["presence_score"] for c in "ABCD"} == \
        pytest.approx({c: v / 255 for c, v in values.items()})
    roc = m["tumor_detection"]["liver tumor"]["roc"]
    assert roc["presence_score"] == "probability" and roc["auc"] == 1.0  # A and C above B and D
    (pred / "C" / "probabilities" / "liver_tumor.nii.gz").unlink()  # one case without: volumes for all
    m = evaluate_folders(ref, pred, dataset, progress=False)
    assert m["cases"]["C"]["liver tumor"]["presence_score"] is None
    assert m["tumor_detection"]["liver tumor"]["roc"]["presence_score"] == "largest component ml"


def test_presence_score_from_nnunet_npz(folders):
    ref, pred, dataset = folders
    channels = region_class_names(LABELS)
    for case, value in {"A": 0.7, "B": 0.2, "C": 0.3, "D": 0.1}.items():
        p = np.zeros((len(channels), *SHAPE), np.float32)
        p[channels.index("liver tumor"), 5, 6, 6] = value
        p[channels.index("spleen")] = 1.0  # another class's channel
        np.savez_compressed(pred / f"{case}.npz", probabilities=p)
    m = evaluate_folders(ref, pred, dataset, progress=False)
    assert m["cases"]["C"]["liver tumor"]["presence_score"] == pytest.approx(0.3)
    assert m["tumor_detection"]["liver tumor"]["roc"]["auc"] == 1.0
    np.savez_compressed(pred / "A.npz", probabilities=np.zeros((2, *SHAPE), np.float32))
    with pytest.raises(InputError, match=r"A\.npz: 2 probability channels"):
        evaluate_folders(ref, pred, dataset, progress=False)


def test_prediction_without_the_tumour_class_reports_it_not_predicted(folders, capsys):
    ref, pred, dataset = folders
    own = {"background": 0, "liver": [1]}
    for case in "ABCDE":
        write(pred / f"{case}.nii.gz", label_map(own, liver=LIVER))
    (pred / "labels.json").write_text(json.dumps(own))
    m = evaluate_folders(ref, pred, dataset, progress=False)
    assert "liver tumor" in m["classes_not_in_prediction"] and m["tumor_detection"] == {}
    assert set(m["cases"]["A"]) == {"liver"}
    assert main(["evaluate", "-r", str(ref), "-p", str(pred)]) == 0
    assert "liver tumor: not predicted" in capsys.readouterr().out
    assert (pred / "metrics_roc.png").is_file()


def test_cli_end_to_end(folders, tmp_path, capsys):
    ref, pred, _ = folders  # dataset.json sits beside labelsTr: found without --dataset-json
    assert main(["evaluate", "-r", str(ref), "-p", str(pred), "--tolerance", "liver=1", "-np", "2"]) == 0
    printed = capsys.readouterr().out
    assert "liver tumor: sensitivity 0.500, specificity 0.500" in printed
    assert "lesion recall 0.500 (1/2), false-positive lesions per case 0.250; AUC 0.375 (largest component ml)" \
        in printed
    m = json.loads((pred / "metrics.json").read_text())
    assert m["settings"]["tolerance_mm"]["liver"] == 1.0 and m["cases"]["B"]["liver"]["nsd"] < 1.0
    assert all((pred / f"metrics{suffix}").is_file() for suffix in
               (".csv", "_detection.csv", "_lesions.csv", "_dsc_boxplot.png", "_roc.png"))

    write(pred / "A.nii.gz", np.zeros((3, 3, 3), np.uint8))
    assert main(["evaluate", "-r", str(ref), "-p", str(pred), "-o", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err.startswith("nnunet-clip evaluate: error: ") and "A.nii.gz: its grid (shape (3, 3, 3)" in err
    assert err.endswith("differs from the reference A.nii.gz's ((10, 24, 24), (2.0, 1.5, 1.5), [0.0, 0.0, 0.0])")
    assert main(["evaluate", "-r", str(ref), "-p", str(pred), "--tolerance", "liver"]) == 2
    assert "--tolerance liver: expected NAME=MM" in capsys.readouterr().err
