"""The conversion of one source into the universal raw dataset (what ``convert`` runs)."""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from dataset_conversion import discover, writer
from dataset_conversion.registry import SOURCES
from dataset_conversion.source import Options


def list_sources() -> str:
    """One paragraph per source: name, summary, the classes its cases may annotate."""
    return "\n".join(f"{name:18s} {s.summary}\n{'':18s} annotates: {', '.join(s.classes())}"
                     for name, s in SOURCES.items())


def convert(source_name: str, input_dir: Path, dataset_id: int, name: str = "Universal",
            options: Options = Options()) -> Path:
    """Add the cases of ``source_name`` found below ``input_dir`` to dataset ``dataset_id``.

    Cases converted before (by source and id) are skipped, so repeating a call changes nothing.
    Returns the dataset folder.
    """
    source = SOURCES[source_name]
    root = discover.input_folder(input_dir)
    found = source.find(root, options)
    for layout in discover.layouts(root, (case.files for case in found.cases)):
        print(f"{source_name}: found {layout}")
    folder = writer.dataset_folder(dataset_id, name)
    with writer.locked(folder):
        dataset = writer.RawDataset(folder, list(SOURCES))
        todo = [c for c in found.cases if dataset.converted(source_name, c.source_id) is None]
        joined = 0
        for case in tqdm(todo, desc=f"convert {source_name}", unit="case"):
            joined += dataset.add(source_name, case, root)[1]
    print(f"{source_name}: {len(todo) - joined} cases added, {joined} joined existing cases as "
          f"duplicates, {len(found.cases) - len(todo)} already converted, {found.skipped} images "
          f"without labels (or not CT) ignored -> {folder}")
    return folder
