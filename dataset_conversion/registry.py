"""All sources, by the SOURCE name of ``nnunet-clip convert``."""
from __future__ import annotations

from dataset_conversion import (abdomenct, amos, btcv, chaos, ct_org, ircadb, kits, lits, msd,
                                pancreas_ct, totalsegmentator, word)
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
)}
