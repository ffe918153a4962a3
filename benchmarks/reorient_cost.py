"""Time of moving a full-size CT into a model's orientation and its class maps back (``ModelView``).

A synthetic int16 CT of ``--shape`` (z y x) voxels stored RAS-like (direction -1, -1, 1, as many
DICOM-to-NIfTI tools write it) is viewed in the LPS orientation of a model, and ``--classes``
float16 probability maps on the model's grid go back onto the scan's grid, as ``nnunet-clip
predict`` does per case. For scale: the time to read the scan from a compressed NIfTI. Medians
of ``--repeats`` runs; one thread.

    python benchmarks/reorient_cost.py                # 300 × 512 × 512, 32 classes
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunet_clip.orientation import ModelView


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[300, 512, 512])
    parser.add_argument("--classes", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    rng = np.random.default_rng(0)
    scan = sitk.GetImageFromArray(rng.integers(-1024, 1500, args.shape, dtype=np.int16))
    scan.SetSpacing((0.8, 0.8, 1.5))
    scan.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    view = ModelView.of(scan, "LPS")
    class_map = rng.random(args.shape).astype(np.float16)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ct.nii.gz"
        sitk.WriteImage(scan, str(path), True)
        read = median_seconds(lambda: sitk.ReadImage(str(path)), args.repeats)
    forward = median_seconds(lambda: ModelView.of(scan, "LPS"), args.repeats)
    back = median_seconds(lambda: view.to_input(class_map), args.repeats)
    print(f"scan {' × '.join(map(str, args.shape))}, {args.classes} classes, {os.cpu_count()} cores (1 thread used)")
    print("| step | seconds |\n|---|---|")
    print(f"| scan into the model's orientation | {forward:.3f} |")
    print(f"| {args.classes} probability maps back (float16) | {back * args.classes:.3f} ({back * 1000:.0f} ms each) |")
    print(f"| for scale: reading the scan (.nii.gz) | {read:.3f} |")


if __name__ == "__main__":
    main()
