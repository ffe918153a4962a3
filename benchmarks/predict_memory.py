"""Peak memory and time of ``nnunet-clip predict`` against ``nnUNetv2_predict``, same model, same input.

The model: a 32-class nnunet-clip model planned by nnU-Net for CT at the input's spacing (so no
resampling, as for a model trained on such scans), with the network narrowed to at most
``WIDTH`` features per stage and untrained weights (prediction cost does not depend on training).
A narrow network makes the network's share of the time small, so the fixed costs of
``nnunet-clip predict`` (post-processing, 32 mask files) weigh as much as they ever will.

The input: one synthetic CT (air, a body ellipse, organ ellipsoids; int16 HU) of ``--shape``
(z y x) voxels at ``--spacing`` (z y x, mm). Both commands run on the CPU in their own process,
with the same test-time augmentation setting. Time: wall clock of the whole command. Memory:
the peak of the summed proportional set size (PSS) of the command and all its child processes,
sampled every 0.2 s (nnUNetv2_predict preprocesses and exports in worker processes).

    python benchmarks/predict_memory.py --shape 75 256 256    # both commands on a proxy (time ratio, memory)
    python benchmarks/predict_memory.py --shape 300 512 512 --step-size 1 --no-baseline   # full-size memory
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from blob_dataset import write_blob_dataset
from nnunet_clip.plugin import use_plugin_trainers

DATASET_ID = 994
WIDTH = 32
TRAINING_SHAPE = (48, 96, 96)


def write_training_data(raw: Path, spacing: tuple[float, float, float]) -> None:
    """Four small cases with a box of every class at ``spacing``, every class annotated."""
    write_blob_dataset(raw / f"Dataset{DATASET_ID}_PredictBenchmark", TRAINING_SHAPE, 4, (3, 6, 6), spacing)


def prepare_model(root: Path, spacing: tuple[float, float, float]) -> Path:
    """Plan, preprocess, embed (random CLIP weights) and save an untrained fold 0; returns the model folder.

    A model already prepared in ``root`` is reused.
    """
    done = list((root / "results").glob("*/nnUNetTrainerCLIP__*/fold_0/checkpoint_final.pth"))
    if done:
        return done[0].parents[1]
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                      preprocess)
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    from nnunet_clip.cli import main as nnunet_clip

    write_training_data(root / "raw", spacing)
    extract_fingerprints([DATASET_ID], num_processes=1)
    plan_experiments([DATASET_ID])
    name = maybe_convert_to_dataset_name(DATASET_ID)
    plans_file = root / "preprocessed" / name / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    kwargs = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    kwargs["features_per_stage"] = [min(f, WIDTH) for f in kwargs["features_per_stage"]]
    plans_file.write_text(json.dumps(plans, indent=1))
    preprocess([DATASET_ID], configurations=("3d_fullres",), num_processes=(1,))
    nnunet_clip(["embed", "-d", str(DATASET_ID), "--pretrained", "none"])
    return save_untrained_model(root / "preprocessed" / name)


def save_untrained_model(preprocessed: Path) -> Path:
    """An untrained fold 0 of nnUNetTrainerCLIP on a preprocessed dataset's nnUNetPlans (embedded), saved as
    a model folder under ``nnUNet_results`` that both commands read; returns that folder."""
    import torch
    from nnunet_clip.trainers.nnUNetTrainerCLIP import nnUNetTrainerCLIP

    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    trainer = nnUNetTrainerCLIP({**plans, "continue_training": False}, "3d_fullres", 0, dataset_json,
                                device=torch.device("cpu"))
    trainer.initialize()
    os.makedirs(trainer.output_folder, exist_ok=True)
    trainer.save_checkpoint(os.path.join(trainer.output_folder, "checkpoint_final.pth"))
    for file, data in (("plans.json", trainer.plans_manager.plans), ("dataset.json", dataset_json)):
        Path(trainer.output_folder_base, file).write_text(json.dumps(data, indent=1))
    return Path(trainer.output_folder_base)


def write_input(folder: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
    """A synthetic abdominal CT: body ellipse (fat, muscle), liver, spleen and kidneys, in HU."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    z, y, x = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
    y, x = y[:, None], x[None, :]
    image = np.full(shape, -1000, dtype=np.int16)
    organs = ((-0.3, 0.0, 0.35, 60), (0.45, 0.1, 0.15, 50), (-0.35, 0.45, 0.12, 150), (0.35, 0.45, 0.12, 150))
    for k, zk in enumerate(z):
        plane = image[k]
        plane[(x / 0.8) ** 2 + (y / 0.6) ** 2 < 1] = -80
        plane[(x / 0.7) ** 2 + (y / 0.5) ** 2 < 1] = 40
        for cx, cy, r, hu in organs:
            plane[(x - cx) ** 2 + (y - cy) ** 2 + zk ** 2 * r ** 2 < r ** 2] = hu
    itk = sitk.GetImageFromArray(image)
    itk.SetSpacing(spacing[::-1])
    sitk.WriteImage(itk, str(folder / "ct_0000.nii.gz"))


def _tree_pss(pid: int) -> int:
    """Summed proportional set size (bytes) of ``pid`` and all its descendants.

    PSS splits shared pages (the torch libraries every worker maps) among the processes sharing
    them, so the sum over processes is the memory they use together.
    """
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for children in Path(f"/proc/{p}/task").glob("*/children"):
                stack += [int(c) for c in children.read_text().split()]
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:  # the process ended
            continue
        total += next(int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:"))
    return total


def measure(command: list[str]) -> dict:
    """Wall time (s) and peak summed PSS (GB) of a command and its children."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    peak = [0]

    def sample():
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_pss(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{stderr[-3000:]}")
    return {"seconds": round(seconds, 1), "peak_memory_gb": round(peak[0] / 1e9, 2)}


def run(shape, spacing, model: Path, work: Path, args: argparse.Namespace) -> dict:
    bin_dir = Path(sys.executable).parent
    inputs = work / f"input_{'x'.join(map(str, shape))}"
    write_input(inputs, shape, spacing)
    step = str(args.step_size)
    ours = [str(bin_dir / "nnunet-clip"), "predict", "-m", str(model), "-i", str(inputs),
            "-o", str(work / "out_nnunet_clip"), "-f", "0", "--device", "cpu", "--step-size", step,
            *([] if args.tta else ["--disable-tta"])]
    theirs = [str(bin_dir / "nnUNetv2_predict_from_modelfolder"), "-m", str(model), "-i", str(inputs),
              "-o", str(work / "out_nnunetv2"), "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1",
              "-step_size", step, *([] if args.tta else ["--disable_tta"])]
    commands = {"nnunet_clip_predict": ours, **({} if args.no_baseline else {"nnUNetv2_predict": theirs})}
    runs = {tool: [] for tool in commands}
    for _ in range(args.repeats):  # alternating, so that a change in machine load hits both alike
        for tool, command in commands.items():
            runs[tool].append(measure(command))
            print(tool, shape, runs[tool][-1], file=sys.stderr, flush=True)
    result = {"shape_zyx": list(shape), "spacing_zyx_mm": list(spacing),
              "voxels_millions": round(float(np.prod(shape)) / 1e6, 2)}
    for tool, measured in runs.items():
        result[tool] = {"seconds": [m["seconds"] for m in measured],
                        "peak_memory_gb": max(m["peak_memory_gb"] for m in measured)}
    if len(runs) == 2:
        median = {tool: float(np.median(result[tool]["seconds"])) for tool in runs}
        result["time_ratio_of_medians"] = round(median["nnunet_clip_predict"] / median["nnUNetv2_predict"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, action="append", help="input z y x (repeatable); "
                        "default 300 512 512")
    parser.add_argument("--spacing", type=float, nargs=3, default=(2.5, 0.8, 0.8), help="z y x, mm")
    parser.add_argument("--tta", action="store_true", help="mirroring on in both commands (default off)")
    parser.add_argument("--step-size", type=float, default=0.5, help="sliding-window step of both commands "
                        "(memory does not depend on it; 1 makes a full-size run about 5× faster)")
    parser.add_argument("--no-baseline", action="store_true", help="run nnunet-clip predict only (memory)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per command and shape (median time)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="predict_benchmark_"))
    os.environ.update({"nnUNet_raw": str(work / "raw"), "nnUNet_preprocessed": str(work / "preprocessed"),
                       "nnUNet_results": str(work / "results")})
    use_plugin_trainers()  # for the trainer class here and in nnUNetv2_predict
    spacing = tuple(args.spacing)
    model = prepare_model(work, spacing)
    results = [run(tuple(shape), spacing, model, work, args) for shape in (args.shape or [(300, 512, 512)])]
    text = json.dumps({"tta": args.tta, "step_size": args.step_size, "cpu_count": os.cpu_count(), "runs": results},
                      indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
