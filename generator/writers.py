"""File writers: Parquet, CSV and JSON Lines, all vectorised (no per-record Python).

Text formats render every value with Arrow compute kernels. Text-only defects are applied
while rendering: ``wrong_type`` replaces a numeric value by a non-numeric string and
``truncated_line`` cuts a JSON line in half.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from generator.arrow_util import dictionary_plain_bytes, single_dictionaries

FORMATS = ("parquet", "csv", "jsonl")
EXTENSION = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
UNIQUE_STRINGS = {"record_id", "subscriber_id", "scenario_id"}
IDENTIFIER_STRINGS = {"served_msisdn", "served_imsi", "served_imei", "other_party", "msisdn", "imsi", "imei"}
DEFAULT_DICTIONARY_PAGE_LIMIT = 1 << 20
# Values the Parquet writer takes per step (pyarrow's default: 1,024). Statistics of dictionary
# columns are computed per step (a hash of the step's indices), so larger steps cost less; pages
# still close at the 1 MiB page size, at most one step later.
WRITE_BATCH_SIZE = 1 << 16
WRONG_TYPE_VALUES = ["12O", "n/a", "1.5.0", "ten", "0x1F"]  # no commas: CSV is written unquoted


def write_table(table: pa.Table, path: Path, file_format: str,
                text_defects: dict[str, np.ndarray] | None = None) -> None:
    text_defects = text_defects or {}
    if file_format == "parquet":
        table = single_dictionaries(table)
        # store_schema=False: dictionary-encoded columns read back as plain strings.
        delta = delta_columns(table.schema)
        pq.write_table(table, path, use_dictionary=dictionary_columns(table.schema),
                       compression={f.name: "none" if f.name in delta else "snappy" for f in table.schema},
                       column_encoding={name: "DELTA_BINARY_PACKED" for name in delta},
                       write_statistics=statistics_columns(table.schema), store_schema=False,
                       dictionary_pagesize_limit=dictionary_page_limit(table),
                       write_batch_size=WRITE_BATCH_SIZE)
        return
    columns = _render_text(table, text_defects.get("wrong_type"), quote_strings=file_format == "jsonl")
    if file_format == "csv":
        pa_csv.write_csv(pa.table(columns, names=table.column_names), path,
                         pa_csv.WriteOptions(quoting_style="none"))
        return
    lines = _join_json(table.column_names, columns)
    cut = text_defects.get("truncated_line")
    if cut is not None and len(cut):
        lengths = pc.utf8_length(lines.take(pa.array(cut)))
        halves = [line[: max(1, n // 2)] for line, n in zip(lines.take(pa.array(cut)).to_pylist(), lengths.to_pylist())]
        index = np.arange(len(lines))
        index[cut] = len(lines) + np.arange(len(cut))
        lines = pa.concat_arrays([lines, pa.array(halves, pa.string())]).take(pa.array(index))
    body = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
    with open(path, "wb") as fh:
        fh.write(_string_bytes(body))


def dictionary_page_limit(table: pa.Table) -> int:
    """Parquet's dictionary page limit: pyarrow's default (1 MiB), raised to hold the largest
    dictionary the table brings as Arrow dictionaries (the population's numbers, IMSIs, IMEIs).

    Above the limit Parquet abandons the dictionary and decodes every value to write it plain,
    which for the identifier columns costs more time and several times the space. The limit is
    raised only for dictionaries given as such: plain string columns (the benchmark's random
    values) keep the default, which is their fastest setting (a larger limit would have the
    writer hash more unique strings before giving up on them).
    """
    return max(DEFAULT_DICTIONARY_PAGE_LIMIT, dictionary_plain_bytes(table) * 5 // 4 + 65536)


def delta_columns(schema: pa.Schema) -> list[str]:
    """Integers and timestamps: DELTA_BINARY_PACKED (bit-packed differences), uncompressed.

    Cheaper to write than PLAIN + Snappy and smaller (times, durations and volumes pack into
    few bits; Snappy finds nothing more to take from the packed bits). Spark, Arrow and every
    Parquet reader decode it.
    """
    return [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type)]


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Dictionary-encode repeated strings only: trying it on unique ids (then falling back) costs time."""
    return [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_dictionary(f.type))
            and f.name not in UNIQUE_STRINGS]


def statistics_columns(schema: pa.Schema) -> list[str]:
    """Min/max statistics where readers prune with them (time, numbers, categories), not on identifiers."""
    return [f.name for f in schema if f.name not in UNIQUE_STRINGS and f.name not in IDENTIFIER_STRINGS]


def _render_text(table: pa.Table, wrong_rows: np.ndarray | None, quote_strings: bool) -> list[pa.Array]:
    """Every column as text (JSON tokens when ``quote_strings``), nulls kept as nulls."""
    out = []
    numeric_names = [f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
    wrong_col = None
    if wrong_rows is not None and len(wrong_rows) and numeric_names:
        # Pick, per defective row, one numeric column that is not null there.
        wrong_col = np.array(numeric_names, dtype=object)[np.arange(len(wrong_rows)) % len(numeric_names)]
    for f in table.schema:
        col = table.column(f.name).combine_chunks()
        if pa.types.is_dictionary(f.type):
            col = col.cast(pa.string())
            f = pa.field(f.name, pa.string())
        if pa.types.is_timestamp(f.type):
            text = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
            if quote_strings:
                text = _quote(text)
        elif pa.types.is_date(f.type):
            text = pc.strftime(col, format="%Y-%m-%d")
            if quote_strings:
                text = _quote(text)
        elif pa.types.is_string(f.type):
            text = _quote(col) if quote_strings else col
        elif pa.types.is_boolean(f.type):
            text = col.cast(pa.string())
        else:
            text = col.cast(pa.string())
        if wrong_col is not None and f.name in numeric_names:
            rows = wrong_rows[wrong_col == f.name]
            if len(rows):
                bad = [WRONG_TYPE_VALUES[i % len(WRONG_TYPE_VALUES)] for i in range(len(rows))]
                values = pa.array(bad, pa.string())
                text = _scatter(text, rows, _quote(values) if quote_strings else values)
        out.append(text)
    return out


def json_lines(table: pa.Table) -> pa.Array:
    """One JSON object per row (the contract's Kafka message format), rendered in C++ kernels."""
    return _join_json(table.column_names, _render_text(table, None, quote_strings=True))


def _join_json(names: list[str], columns: list[pa.Array]) -> pa.Array:
    parts: list = []
    for i, (name, col) in enumerate(zip(names, columns)):
        parts.append(pa.scalar(("{" if i == 0 else ",") + f'"{name}":'))
        parts.append(col.fill_null("null"))
    parts.append(pa.scalar("}"))
    return pc.binary_join_element_wise(*parts, "")


def _quote(col: pa.Array) -> pa.Array:
    # Generated values never contain quotes or backslashes, so no escaping is needed.
    return pc.binary_join_element_wise(pa.scalar('"'), col, pa.scalar('"'), "")


def _scatter(col: pa.Array, rows: np.ndarray, values: pa.Array) -> pa.Array:
    index = np.arange(len(col))
    index[rows] = len(col) + np.arange(len(rows))
    return pa.concat_arrays([col, values]).take(pa.array(index))


def _string_bytes(arr: pa.Array) -> memoryview:
    """The character data of a string array, i.e. all values concatenated, without copying."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    data = arr.buffers()[2]
    return memoryview(data)[offsets[0]: offsets[-1]]
