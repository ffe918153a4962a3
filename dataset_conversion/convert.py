"""The conversion of one source into the universal raw dataset (what ``convert`` runs).

Cases are read, reoriented and written (``writer.stage_case``) in ``processes`` worker processes;
the converting process adds them to the dataset in case order (``RawDataset.commit``), so the
result does not depend on the number of processes.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from dataset_conversion import discover, writer
from dataset_conversion.registry import SOURCES
from dataset_conversion.source import Case, Options

AHEAD_PER_PROCESS = 2
"""Cases staged ahead of the one being added, per worker process."""


def list_sources() -> str:
    """One paragraph per source: name, summary, the classes its cases may annotate."""
    return "\n".join(f"{name:18s} {s.summary}\n{'':18s} annotates: {', '.join(s.classes())}"
                     for name, s in SOURCES.items())


def _one_thread_per_process() -> None:
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def _add_in_parallel(dataset: writer.RawDataset, cases: Sequence[Case], stage: Callable[[Case], writer.Staged],
                     processes: int, bar: tqdm) -> int:
    """Stage ``cases`` in worker processes and commit them in order; returns how many joined existing cases."""
    joined = 0
    queue = iter(cases)
    pending: deque[Future] = deque()
    pool = ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_one_thread_per_process)

    def submit_next() -> None:
        case = next(queue, None)
        if case is not None:
            pending.append(pool.submit(stage, case))

    try:
        for _ in range(AHEAD_PER_PROCESS * processes):
            submit_next()
        while pending:
            staged = pending.popleft().result()
            submit_next()
            joined += dataset.commit(staged)[1]
            bar.update()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for future in pending:
            if not future.cancelled() and future.exception() is None:
                future.result().discard()
    return joined


def convert(source_name: str, input_dir: Path, dataset_id: int, name: str = "Universal",
            options: Options = Options(), processes: int = 1) -> Path:
    """Add the cases of ``source_name`` found below ``input_dir`` to dataset ``dataset_id``.

    Cases converted before (by source and id) are skipped, so repeating a call changes nothing,
    and a call that was interrupted finishes the job. Returns the dataset folder.
    """
    source = SOURCES[source_name]
    root = discover.input_folder(input_dir)
    found = source.find(root, options)
    for layout in discover.layouts(root, (case.files for case in found.cases)):
        print(f"{source_name}: found {layout}")
    prefix = found.name or source_name
    folder = writer.dataset_folder(dataset_id, name)
    with writer.locked(folder):
        dataset = writer.RawDataset(folder, [*SOURCES, prefix])
        try:
            dataset.add_classes(found.classes)
            todo = [c for c in found.cases if dataset.converted(prefix, c.source_id) is None]
            stage = partial(writer.stage_case, source=prefix, input_dir=root, folder=folder, table=dataset.table)
            with tqdm(total=len(todo), desc=f"convert {prefix}", unit="case") as bar:
                if processes > 1:
                    joined = _add_in_parallel(dataset, todo, stage, processes, bar)
                else:
                    joined = 0
                    for case in todo:
                        joined += dataset.commit(stage(case))[1]
                        bar.update()
        finally:
            dataset.save()
    print(f"{prefix}: {len(todo) - joined} cases added, {joined} joined existing cases as duplicates, "
          f"{len(found.cases) - len(todo)} already converted, {found.skipped} images without labels "
          f"(or not CT) ignored -> {folder}")
    return folder
