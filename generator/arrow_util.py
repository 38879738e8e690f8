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


DICT_TYPE = pa.dictionary(pa.int32(), pa.string())


def encoded(indices: np.ndarray, dictionary: pa.Array, valid: np.ndarray | None = None) -> pa.DictionaryArray:
    """A string column as indices into ``dictionary`` (no string is copied: building it is free,
    and Parquet stores it dictionary-encoded anyway)."""
    mask = None if valid is None else ~valid
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32(), mask=mask), dictionary)


def categorical(codes: np.ndarray, names: tuple[str, ...] | list[str]) -> pa.DictionaryArray:
    """Small-int codes -> dictionary-encoded string column."""
    return encoded(codes, pa.array(list(names), pa.string()))


def replace_rows(table: pa.Table, name: str, rows: np.ndarray, values: pa.Array | list) -> pa.Table:
    """Table with column ``name`` set to ``values`` at ``rows`` (others unchanged).

    Appends the new values after the column and gathers once: one pass over the column,
    whatever the number of rows replaced, instead of a full-length mask and if_else.
    """
    i = table.schema.get_field_index(name)
    field = table.schema.field(name)
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values, field.type)
    column = table.column(i)
    if pa.types.is_dictionary(field.type):
        # Append the new values to the dictionary and point the rows at them.
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        values = values.cast(pa.string())
        dictionary = pa.concat_arrays([column.dictionary, values.fill_null("")])
        indices = column.indices.fill_null(0).to_numpy().astype(np.int32)
        valid = np.asarray(column.is_valid())
        indices[rows] = len(column.dictionary) + np.arange(len(rows))
        valid[rows] = np.asarray(values.is_valid())
        indices[~valid] = 0
        return table.set_column(i, field, encoded(indices, dictionary, valid))
    if (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)) and column.null_count == 0 \
            and values.null_count == 0:
        # Numbers without nulls: edit a numpy copy (a memcpy) instead of gathering.
        data = column.to_numpy().copy()
        data[rows] = values.to_numpy()
        return table.set_column(i, field, pa.array(data, field.type))
    index = np.arange(table.num_rows)
    index[rows] = table.num_rows + np.arange(len(rows))
    merged = pa.concat_arrays([table.column(i).combine_chunks(), values.cast(field.type)])
    return table.set_column(i, field, merged.take(pa.array(index)))
