"""All sources, by the SOURCE name of ``nnunet-clip convert``."""
from __future__ import annotations

from dataset_conversion import (abdomenct, amos, btcv, chaos, ct_org, ircadb, kits, lits, msd, nnunet_raw,
                                pancreas_ct, per_class_files, totalsegmentator, word)
from dataset_conversion.source import Source

SOURCES: dict[str, Source] = {s.name: s for s in (
    btcv.SOURCE,
    pancreas_ct.SOURCE,
    chaos.SOURCE,
    lits.SOURCE,
    kits.KITS19,
    kits.KITS21,
    kits.KITS23,
    ircadb.SOURCE,
    word.SOURCE,
    abdomenct.ABDOMENCT_1K,
    abdomenct.ABDOMENCT_12ORGAN,
    abdomenct.FLARE22,
    amos.SOURCE,
    *msd.SOURCES,
    ct_org.SOURCE,
    totalsegmentator.SOURCE,
    per_class_files.ABDOMENATLAS,
    nnunet_raw.SOURCE,
    per_class_files.PER_CLASS_FILES,
)}
