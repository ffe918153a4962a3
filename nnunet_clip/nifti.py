"""Whole-file checks of NIfTI files, for what SimpleITK lets through: it reads a truncated ``.nii`` or
``.nii.gz`` without an error (the missing voxels come back as garbage), reads NaN and infinite
voxels as 0, and writes a truncated file when the disk fills up, saying so on stderr only."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

HEADER_BYTES = 348
"""Size of a NIfTI-1 header (``sizeof_hdr``); other files (NIfTI-2: 540) are checked for a
compressed stream that ends early only."""
FLOAT_TYPES = {16: "f4", 64: "f8"}
"""NIfTI ``datatype`` codes of float voxels -> numpy type."""
CHUNK = 1 << 24


def problem(path: Path | str) -> str | None:
    """What is wrong with the NIfTI file ``path`` (``.nii``, ``.nii.gz``; None for other files or a
    sound one): a compressed stream that ends early, fewer bytes than its header's voxels need, or
    NaN or infinite voxels."""
    name = str(path).lower()
    if not name.endswith((".nii", ".nii.gz")):
        return None
    try:
        with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
            header = f.read(HEADER_BYTES)
            order = next((o for o in "<>" if len(header) == HEADER_BYTES
                          and struct.unpack(f"{o}i", header[:4])[0] == HEADER_BYTES), None)
            if order is None:
                while f.read(CHUNK):
                    pass
                return f"truncated ({len(header)} bytes, less than a NIfTI header)" \
                    if len(header) < HEADER_BYTES else None
            dims = struct.unpack(f"{order}8h", header[40:56])
            datatype, bitpix = struct.unpack(f"{order}2h", header[70:74])
            offset = int(struct.unpack(f"{order}f", header[108:112])[0])
            voxels = int(np.prod([max(d, 0) for d in dims[1:1 + max(0, min(dims[0], 7))]]))
            size, finite = len(header) + len(f.read(max(offset - HEADER_BYTES, 0))), True
            dtype = np.dtype(order + FLOAT_TYPES[datatype]) if datatype in FLOAT_TYPES else None
            rest = b""
            for chunk in iter(lambda: f.read(CHUNK), b""):
                size += len(chunk)
                if dtype is not None and finite:
                    data = rest + chunk
                    whole = len(data) // dtype.itemsize * dtype.itemsize
                    finite = bool(np.isfinite(np.frombuffer(data[:whole], dtype)).all())
                    rest = data[whole:]
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return "truncated (the compressed data ends early)"
    needed = offset + voxels * bitpix // 8
    if size < needed:
        return f"truncated ({size} of {needed} bytes)"
    return None if finite else "holds NaN or infinite voxels"
