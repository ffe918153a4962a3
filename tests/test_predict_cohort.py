"""A cohort shared between processes (``--num-parts/--part-id``) and resumed after a kill (``--continue``)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from nnunet_clip.cli import main
from nnunet_clip.errors import InputError
from nnunet_clip.inference.cohort import case_outputs, select_part
from test_predict import FAST, predict, tiny_case

CASES = ("abdsrc_000", "abdsrc_001", "liversrc_001")
CLASSES = ["liver", "spleen"]
OPTIONS = ["--classes", *CLASSES, "--statistics", "--preview", "--probabilities"]


@pytest.fixture
def cohort(trained_model, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in CASES:
        shutil.copy(tiny_case(trained_model, name), inputs / f"{name}.nii.gz")
    return inputs


def options(**overrides) -> argparse.Namespace:
    return argparse.Namespace(**{"probabilities": True, "statistics": True, "preview": True,
                                 "output_type": ["nifti"], **overrides})


def written(out, case: str) -> set:
    return {p for p in [*(out / case).rglob("*"), *out.glob(f"{case}.*")] if p.is_file()}


def test_parts_are_every_nth_case_as_nnunet_splits():
    cases = list(range(7))
    parts = [select_part(cases, 3, i) for i in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]  # nnU-Net: cases[part_id::num_parts]
    assert select_part(cases, 9, 8) == []
    with pytest.raises(InputError, match="--part-id 3: must be 0 to 2"):
        select_part(cases, 3, 3)
    with pytest.raises(InputError, match="--num-parts 0"):
        select_part(cases, 0, 0)


def test_two_parts_share_a_cohort_and_an_empty_part_exits_zero(trained_model, cohort, tmp_path, capsys):
    out = tmp_path / "out"
    for part in ("0", "1"):
        assert predict(trained_model, cohort, out, "--classes", *CLASSES, "--num-parts", "2", "--part-id", part) == 0
        said = capsys.readouterr().err
        assert f"part {part} of 2 (from 0): {2 if part == '0' else 1} of 3 case(s)" in said
        assert f"predicted {2 if part == '0' else 1} of {2 if part == '0' else 1} case(s)" in said
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"{name}.nii.gz" for name in CASES]

    assert predict(trained_model, cohort, tmp_path / "idle", "--num-parts", "5", "--part-id", "4") == 0
    assert "part 4 of 5 (from 0): 0 of 3 case(s); nothing to do" in capsys.readouterr().err
    assert not (tmp_path / "idle").exists()


KILLED_RUN = """
import os, signal, sys
import SimpleITK

write, calls = SimpleITK.WriteImage, []

def write_then_die(image, path, *args):
    write(image, path, *args)
    calls.append(path)
    if len(calls) == int(os.environ["KILL_AT_WRITE"]):  # the file is written under its temporary name
        os.kill(os.getpid(), signal.SIGKILL)

SimpleITK.WriteImage = write_then_die
from nnunet_clip.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_continue_skips_complete_cases_and_completes_the_case_a_kill_left_partial(trained_model, cohort, tmp_path,
                                                                                   capsys):
    out = tmp_path / "out"
    argv = ["predict", "-m", str(trained_model.model_folder), "-i", str(cohort), "-o", str(out), *FAST, *OPTIONS]
    # Per case 2 probability maps, 2 masks, then the map; the 9th image is the 2nd case's second mask.
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_RUN), *argv], capture_output=True,
                            text=True, env={**os.environ, "KILL_AT_WRITE": "9"})
    assert killed.returncode == -9, killed.stderr
    first, second, third = CASES
    assert written(out, first) == set(case_outputs(out, first, CLASSES, options()))
    partial = written(out, second)
    assert (out / second / "liver.nii.gz") in partial and not (out / f"{second}.nii.gz").exists()
    leftover = [p for p in partial if p.name.startswith(".tmp-")]
    assert [p.name.split("-", 2)[2] for p in leftover] == ["spleen.nii.gz"], "the file being written when killed"
    assert not (out / third).exists()
    finished = {p: p.stat().st_mtime_ns for p in written(out, first)}

    assert main([*argv, "--continue"]) == 0
    said = capsys.readouterr().err
    assert "--continue: 1 of 3 case(s) complete, skipped" in said and "predicted 2 of 2 case(s)" in said
    for case in CASES:
        assert written(out, case) == set(case_outputs(out, case, CLASSES, options())), case
    assert {p: p.stat().st_mtime_ns for p in written(out, first)} == finished, "the complete case was not redone"

    assert main([*argv, "--continue"]) == 0
    assert "--continue: 3 of 3 case(s) complete, skipped" in capsys.readouterr().err
    assert main([*argv[:-len(OPTIONS)], "--classes", "liver", "--continue"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "labels.json: written for other classes" in error[0]
    assert json.loads((out / "labels.json").read_text())["files"] == {"liver": "liver.nii.gz",
                                                                      "spleen": "spleen.nii.gz"}


def test_continue_predicts_again_a_complete_case_missing_a_newly_asked_output(trained_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(trained_model, tiny_case(trained_model), out, "--classes", *CLASSES) == 0
    assert predict(trained_model, tiny_case(trained_model), out, "--classes", *CLASSES, "--statistics",
                   "--continue") == 0
    assert "--continue: 0 of 1 case(s) complete" in capsys.readouterr().err
    assert (out / "abdsrc_000" / "statistics.json").is_file()
