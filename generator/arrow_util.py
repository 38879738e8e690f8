"""Zero-copy construction of Arrow string columns from fixed-width ASCII byte matrices.

Building millions of identifier strings in Python is the slow part of naive generators;
here digits are computed as uint8 matrices and handed to Arrow as one buffer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def fixed_width_strings(matrix: np.ndarray, valid: np.ndarray | None = None) -> pa.StringArray:
    """(n, w) uint8 ASCII matrix -> Arrow string array of n values of width w (null where not valid)."""
    matrix = np.ascontiguousarray(matrix, dtype=np.uint8)
    n, w = matrix.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    validity = None
    null_count = 0
    if valid is not None:
        null_count = int(n - np.count_nonzero(valid))
        if null_count:
            validity = pa.py_buffer(np.packbits(valid.astype(bool), bitorder="little"))
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(matrix), validity, null_count
    )


def join_fixed_width(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate fixed-width ASCII matrices column-wise (prefix + digits + ...)."""
    return np.concatenate([np.ascontiguousarray(p, dtype=np.uint8) for p in parts], axis=1)


def constant_prefix(text: str, n: int) -> np.ndarray:
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8)[None, :].repeat(n, 0)


def categorical(codes: np.ndarray, names: tuple[str, ...] | list[str]) -> pa.Array:
    """Small-int codes -> string column (Arrow ``take`` from a tiny dictionary, in C++)."""
    return pa.array(list(names), pa.string()).take(pa.array(codes, pa.int32()))
