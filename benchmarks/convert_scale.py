"""Conversion at scale: ``nnunet-clip convert nnunet`` of many full-size synthetic CTs with ``-np``.

The source is an nnU-Net raw dataset of ``--cases`` synthetic CTs of ``--shape`` (z y x) voxels at
2.5 x 0.8 x 0.8 mm with integer labels (liver, spleen, right and left kidney, aorta). Each case is a
body ellipse of its own size with organs of their own sizes and places and CT noise (10 HU), so
that no two scans are alike; the duplicate index has to tell them apart. The source is written
once below ``--work`` (in ``--processes`` processes) and reused by later runs; every run converts
into a fresh dataset.

The conversion runs as a user runs it, in its own process. Every second the benchmark counts the
cases recorded (the case lines of provenance.jsonl) and the summed proportional set size (PSS) of
the command and its worker processes. It reports, for each stretch between ``--checkpoints`` (case
counts), the cases converted per minute and the peak memory, and the sizes of dataset.json and
provenance.jsonl, as JSON on stdout and in ``--out``; the command's own output goes to
``--work``/convert.log.

    python benchmarks/convert_scale.py --cases 2000 --processes 2 --work convert_scale    # the full run
    python benchmarks/convert_scale.py --cases 100 --checkpoints 25 50 100 --work convert_scale

Disk: about 5 MB per case at 200 x 256 x 256 for the source and as much for the dataset
(docs/performance.md, "Conversion at scale").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from predict_memory import _tree_pss as tree_pss

DATASET_ID = 995
SPACING = (0.8, 0.8, 2.5)  # x, y, z (mm)
ORGANS = {  # label value: (name, centre (z, y, x) in [-1, 1], radii, HU)
    1: ("liver", (0.0, 0.0, -0.35), (0.45, 0.3, 0.3), 60),
    2: ("spleen", (0.1, 0.1, 0.45), (0.25, 0.15, 0.12), 50),
    3: ("right kidney", (-0.3, 0.35, -0.3), (0.2, 0.1, 0.1), 150),
    4: ("left kidney", (-0.25, 0.35, 0.3), (0.2, 0.1, 0.1), 150),
    5: ("aorta", (0.0, 0.15, 0.05), (0.9, 0.05, 0.05), 200),
}


def write_case(folder: Path, number: int, shape: tuple[int, int, int]) -> None:
    """Case ``number``: image and label, each drawn from its own random state."""
    import SimpleITK as sitk

    rng = np.random.default_rng(number)
    z, y, x = np.ogrid[-1:1:shape[0] * 1j, -1:1:shape[1] * 1j, -1:1:shape[2] * 1j]
    z, y, x = (a.astype(np.float32) for a in (z, y, x))
    body = (x / rng.uniform(0.6, 0.95)) ** 2 + (y / rng.uniform(0.45, 0.75)) ** 2 < 1
    image = np.where(body, np.float32(-90 + 130 * rng.uniform(0.6, 0.9)), np.float32(-1000))
    image = np.broadcast_to(image, shape).copy()
    label = np.zeros(shape, np.uint8)
    for value, (_, centre, radii, hu) in ORGANS.items():
        c = np.add(centre, rng.uniform(-0.05, 0.05, 3))
        r = np.multiply(radii, rng.uniform(0.8, 1.2, 3))
        organ = ((z - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((x - c[2]) / r[2]) ** 2 < 1
        organ &= body
        image[organ] = hu
        label[organ] = value
    image += np.where(body, 10 * rng.standard_normal(shape, dtype=np.float32), np.float32(0))
    for array, path in ((np.rint(image).astype(np.int16), folder / f"imagesTr/case_{number:05d}_0000.nii.gz"),
                        (label, folder / f"labelsTr/case_{number:05d}.nii.gz")):
        itk = sitk.GetImageFromArray(array)
        itk.SetSpacing(SPACING)
        sitk.WriteImage(itk, str(path), useCompression=True)


def write_source(folder: Path, cases: int, shape: tuple[int, int, int], processes: int) -> float:
    """The source dataset (only the cases it lacks); returns the seconds it took."""
    start = time.perf_counter()
    for sub in ("imagesTr", "labelsTr"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"background": 0, **{n: v for v, (n, *_) in ORGANS.items()}},
        "numTraining": cases, "file_ending": ".nii.gz"}, indent=1))
    todo = [n for n in range(1, cases + 1) if not (folder / f"labelsTr/case_{n:05d}.nii.gz").is_file()]
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        for i, _ in enumerate(pool.map(write_case, [folder] * len(todo), todo, [shape] * len(todo)), start=1):
            if i % 50 == 0 or i == len(todo):
                print(f"source: {i}/{len(todo)} cases written", file=sys.stderr)
    return time.perf_counter() - start


def recorded_cases(record: Path) -> int:
    try:
        return record.read_bytes().count(b'"record": "case"')
    except OSError:
        return 0


def convert(source: Path, raw: Path, processes: int, log: Path) -> tuple[list[tuple[float, int, int]], float]:
    """Run the conversion (its output to ``log``); returns (seconds, cases recorded, PSS bytes) every second,
    and the total seconds."""
    command = [sys.executable, "-m", "nnunet_clip.cli", "convert", "nnunet", str(source), "-d", str(DATASET_ID),
               "-np", str(processes)]
    record = raw / f"Dataset{DATASET_ID:03d}_Universal" / "provenance.jsonl"
    samples: list[tuple[float, int, int]] = []
    start = time.perf_counter()
    with open(log, "w") as output:
        process = subprocess.Popen(command, env={**os.environ, "nnUNet_raw": str(raw)}, stdout=output, stderr=output)
        while process.poll() is None:
            samples.append((time.perf_counter() - start, recorded_cases(record), tree_pss(process.pid)))
            time.sleep(1.0)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"convert failed ({process.returncode}); see {log}")
    samples.append((seconds, recorded_cases(record), 0))
    return samples, seconds


def stretches(samples: list[tuple[float, int, int]], checkpoints: list[int]) -> list[dict]:
    """Cases per minute and peak PSS between consecutive checkpoints (the first stretch from the start)."""
    out, previous = [], (0.0, 0)
    for checkpoint in checkpoints:
        reached = next((s for s in samples if s[1] >= checkpoint), None)
        if reached is None:
            break
        inside = [s[2] for s in samples if previous[0] <= s[0] <= reached[0]]
        out.append({"cases": [previous[1], reached[1]], "seconds": round(reached[0] - previous[0], 1),
                    "cases_per_min": round(60 * (reached[1] - previous[1]) / (reached[0] - previous[0]), 1),
                    "peak_pss_gb": round(max(inside, default=0) / 1e9, 2)})
        previous = reached[:2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--shape", type=int, nargs=3, default=(200, 256, 256), metavar=("Z", "Y", "X"))
    parser.add_argument("--processes", type=int, default=2, help="convert -np (and the source's writers)")
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--work", type=Path, default=Path("convert_scale"), help="source and dataset go here")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()

    source = args.work / f"source_{'x'.join(map(str, args.shape))}" / "Dataset001_Scale"
    generated = write_source(source, args.cases, tuple(args.shape), args.processes)
    raw = args.work / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    samples, seconds = convert(source, raw, args.processes, args.work / "convert.log")
    dataset = raw / f"Dataset{DATASET_ID:03d}_Universal"
    result = {
        "cases": args.cases, "shape": list(args.shape), "processes": args.processes,
        "source_seconds": round(generated, 1), "convert_seconds": round(seconds, 1),
        "cases_per_min": round(60 * args.cases / seconds, 1),
        "stretches": stretches(samples, sorted({c for c in args.checkpoints if c <= args.cases} | {args.cases})),
        "peak_pss_gb": round(max(s[2] for s in samples) / 1e9, 2),
        "dataset_json_bytes": (dataset / "dataset.json").stat().st_size,
        "provenance_bytes": (dataset / "provenance.jsonl").stat().st_size,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
