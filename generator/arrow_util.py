"""Zero-copy construction of Arrow string columns from fixed-width ASCII byte matrices.

Building millions of identifier strings in Python is the slow part of naive generators;
here digits are computed as uint8 matrices and handed to Arrow as one buffer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


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
    and Parquet stores it dictionary-encoded anyway). The int32 indices are handed to Arrow
    without a copy when they already are contiguous int32 (Arrow checks their bounds)."""
    return pa.DictionaryArray.from_arrays(_int32_array(indices, valid), dictionary)


def _int32_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int32)
    return pa.Array.from_buffers(pa.int32(), len(values), _validity(valid) + [pa.py_buffer(values)],
                                 null_count=_null_count(valid))


def _validity(valid: np.ndarray | None) -> list:
    if valid is None or valid.all():
        return [None]
    return [pa.py_buffer(np.packbits(valid.astype(bool, copy=False), bitorder="little"))]


def _null_count(valid: np.ndarray | None) -> int:
    return 0 if valid is None else int(len(valid) - np.count_nonzero(valid))


def categorical(codes: np.ndarray, names: tuple[str, ...] | list[str]) -> pa.DictionaryArray:
    """Small-int codes -> dictionary-encoded string column."""
    return encoded(codes, pa.array(list(names), pa.string()))


SMALL_DICTIONARY = 4096  # dictionaries up to this size are searched for values before appending


def replace_rows(table: pa.Table, name: str, rows: np.ndarray, values: pa.Array | list) -> pa.Table:
    """Table with column ``name`` set to ``values`` at ``rows`` (others unchanged).

    One pass over the column whatever the number of rows replaced: fixed-width columns are
    edited in a numpy copy of their data buffer; dictionary columns get a copy of their
    indices pointing at the new values, appended once each to the dictionary (or found in
    it, for small dictionaries), so that the dictionary stays free of duplicates and Parquet
    can write it as it is.
    """
    i = table.schema.get_field_index(name)
    field = table.schema.field(name)
    rows = np.asarray(rows, dtype=np.int64)
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values, field.type.value_type if pa.types.is_dictionary(field.type) else field.type)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    column = table.column(i)
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    new_valid = np.asarray(values.is_valid())
    if pa.types.is_dictionary(field.type):
        values = values.cast(pa.string())
        dictionary = column.dictionary
        codes = np.zeros(len(rows), dtype=np.int32)
        present = values.filter(pa.array(new_valid))
        if len(present):
            unique = pc.unique(present)
            found = pc.index_in(unique, value_set=dictionary) if len(dictionary) <= SMALL_DICTIONARY \
                else pa.nulls(len(unique), pa.int32())
            # Large dictionaries (identifiers) never hold the defective values written here; a
            # collision would only make Parquet fall back to plain encoding for this column.
            found_np = np.asarray(found.fill_null(-1), dtype=np.int64)
            new = found_np < 0
            found_np[new] = len(dictionary) + np.arange(int(new.sum()))
            if new.any():
                dictionary = pa.concat_arrays([dictionary, unique.filter(pa.array(new))])
            codes[new_valid] = found_np[np.asarray(pc.index_in(present, value_set=unique))]
        indices = _buffer_view(column.indices, np.int32).copy()
        indices[rows] = codes
        valid = _edited_validity(column, rows, new_valid)
        return table.set_column(i, field, encoded(indices, dictionary, valid))
    dtype = _FIXED_WIDTH.get(_type_key(field.type))
    if dtype is not None:
        data = _buffer_view(column, dtype).copy()
        storage = pa.int64() if pa.types.is_timestamp(field.type) else field.type
        data[rows] = np.asarray(values.cast(field.type).cast(storage).fill_null(0), dtype=dtype)
        valid = _edited_validity(column, rows, new_valid)
        return table.set_column(i, field, pa.Array.from_buffers(
            field.type, len(data), _validity(valid) + [pa.py_buffer(data)], null_count=_null_count(valid)))
    index = np.arange(table.num_rows)
    index[rows] = table.num_rows + np.arange(len(rows))
    merged = pa.concat_arrays([column, values.cast(field.type)])
    return table.set_column(i, field, merged.take(pa.array(index)))


def repoint_rows(table: pa.Table, name: str, rows: np.ndarray, entry: int) -> pa.Table:
    """Dictionary column ``name`` set to its existing dictionary entry ``entry`` at ``rows``."""
    i = table.schema.get_field_index(name)
    column = table.column(i).combine_chunks()
    indices = _buffer_view(column.indices, np.int32).copy()
    indices[rows] = entry
    valid = _edited_validity(column, rows, np.ones(len(rows), dtype=bool))
    return table.set_column(i, table.schema.field(name), encoded(indices, column.dictionary, valid))


_FIXED_WIDTH = {"int32": np.int32, "int64": np.int64, "double": np.float64, "timestamp": np.int64}


def _type_key(t: pa.DataType) -> str:
    return "timestamp" if pa.types.is_timestamp(t) and t.unit == "us" else str(t)


def _buffer_view(arr: pa.Array, dtype) -> np.ndarray:
    """The values of a fixed-width array as a read-only numpy view (null slots included)."""
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * np.dtype(dtype).itemsize)


def _edited_validity(column: pa.Array, rows: np.ndarray, new_valid: np.ndarray) -> np.ndarray | None:
    if column.null_count == 0 and new_valid.all():
        return None
    valid = np.array(column.is_valid(), dtype=bool)
    valid[rows] = new_valid
    return valid


def single_dictionaries(table: pa.Table) -> pa.Table:
    """Give every dictionary column one dictionary shared by all its chunks.

    Parquet writes a dictionary column as it is (dictionary page + indices) only while every
    chunk brings the same dictionary; otherwise it decodes all values and writes them plain.
    The chunks of a part (baseline, defects, scenario records) carry dictionaries that extend
    a common prefix (the population's numbers, the cells, the category names), so merging
    them is a concatenation of their tails and a shift of some indices: no hashing.
    """
    for i, field in enumerate(table.schema):
        if not pa.types.is_dictionary(field.type):
            continue
        column = table.column(i)
        if column.num_chunks <= 1:
            continue
        chunks = column.chunks
        merged = chunks[0].dictionary
        shifts: list[tuple[int, int] | None] = [None]
        for chunk in chunks[1:]:
            d = chunk.dictionary
            if len(d) == len(merged) and d.equals(merged):  # same buffers: compared in no time
                shifts.append(None)
                continue
            p = _common_prefix(merged, d)
            if p == len(d):
                shifts.append(None)
            elif p == len(merged):
                merged = pa.concat_arrays([merged, d.slice(p)])
                shifts.append(None)
            else:
                shifts.append((p, len(merged) - p))
                merged = pa.concat_arrays([merged, d.slice(p)])
        new_chunks = []
        remap = None
        if len(merged) <= SMALL_DICTIONARY and len(pc.unique(merged)) != len(merged):
            unique = pc.unique(merged)
            remap = np.asarray(pc.index_in(merged, value_set=unique), dtype=np.int32)
            merged = unique
        for chunk, shift in zip(chunks, shifts):
            if shift is None and remap is None:  # its dictionary is a prefix of the merged one
                new_chunks.append(pa.DictionaryArray.from_arrays(chunk.indices, merged, safe=False))
                continue
            idx = _buffer_view(chunk.indices, np.int32)
            if shift is not None:
                idx = np.where(idx >= shift[0], idx + shift[1], idx).astype(np.int32)
            if remap is not None:
                idx = remap[np.clip(idx, 0, len(remap) - 1)]
            valid = None if chunk.null_count == 0 else np.asarray(chunk.is_valid())
            new_chunks.append(encoded(idx, merged, valid))
        table = table.set_column(i, field, pa.chunked_array(new_chunks, field.type))
    return table


def _common_prefix(a: pa.Array, b: pa.Array) -> int:
    """Length of the longest common prefix of two arrays (binary search over slice equality)."""
    m = min(len(a), len(b))
    if a.slice(0, m).equals(b.slice(0, m)):
        return m
    lo, hi = 0, m  # prefix of length lo is equal, of length hi is not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a.slice(0, mid).equals(b.slice(0, mid)):
            lo = mid
        else:
            hi = mid
    return lo


def dictionary_plain_bytes(table: pa.Table) -> int:
    """Size of the largest dictionary of the table's dictionary columns, PLAIN-encoded as Parquet
    counts it for its dictionary page limit (4-byte length + bytes per value)."""
    largest = 0
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_dictionary(field.type):
            for chunk in column.chunks:
                d = chunk.dictionary
                offsets = np.frombuffer(d.buffers()[1], dtype=np.int32, count=len(d) + 1, offset=d.offset * 4)
                largest = max(largest, int(offsets[-1] - offsets[0]) + 4 * len(d))
    return largest
