"""Injected data-quality defects, each with a documented code, labelled by record id.

Typed defects are applied to the Arrow table; the two that only exist in text files
(``wrong_type``, ``truncated_line``) are returned as row positions for the text writers.
The codes are the validation rule codes of the shared contract (cdr.validation), so the
batch layer's quarantine can be scored code by code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdr.validation import DEFECT_CODES
from generator.scenarios import _set

DURATION_TYPES = ("voice", "data", "voip", "ims")
MISSABLE = ("served_msisdn", "start_time", "cell_id", "access_technology")
FUTURE_SHIFT_US = 20 * 365 * 86_400_000_000  # 20 years ahead: in the future for any processing date
FAR_PAST_US = 631_152_000_000_000  # 1990-01-01T00:00:00Z
US_PER_DAY = 86_400_000_000


def applicable_codes(record_type: str, file_format: str) -> list[str]:
    codes = ["missing_field", "malformed_msisdn", "invalid_imei", "timestamp_future", "timestamp_past",
             "unknown_cell", "duplicate"]
    if record_type in DURATION_TYPES:
        codes += ["negative_duration", "duration_over_24h"]
    if record_type == "data":
        codes.append("negative_bytes")
    if file_format in ("csv", "jsonl"):
        codes.append("wrong_type")
    if file_format == "jsonl":
        codes.append("truncated_line")
    assert set(codes) <= set(DEFECT_CODES), set(codes) - set(DEFECT_CODES)
    return codes


@dataclass
class Injected:
    table: pa.Table  # with typed defects applied and duplicates appended
    labels: pa.Table  # record_id, record_type, defect
    text_defects: dict[str, np.ndarray]  # code -> row positions in ``table`` (text formats only)


def inject(table: pa.Table, record_type: str, rate: float, file_format: str,
           rng: np.random.Generator) -> Injected:
    n = table.num_rows
    k = int(rng.binomial(n, rate)) if rate > 0 else 0
    if k == 0:
        return Injected(table, _labels([], [], record_type), {})
    rows = np.sort(rng.choice(n, size=k, replace=False))
    choices = applicable_codes(record_type, file_format)
    codes = np.array(choices, dtype=object)[rng.integers(0, len(choices), k)]
    # A handset defect needs a handset: fixed lines get a malformed number instead.
    no_imei = np.asarray(table.column("served_imei").is_null().take(pa.array(rows)))
    codes[(codes == "invalid_imei") & no_imei] = "malformed_msisdn"

    def at(code: str) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[rows[codes == code]] = True
        return mask

    m = at("missing_field")
    if m.any():
        which = rng.integers(0, len(MISSABLE), n)
        for i, name in enumerate(MISSABLE):
            sel = m & (which == i)
            if sel.any():
                col = table.column(name)
                table = _set(table, name, sel, pa.nulls(n, col.type))
    # Identifier defects touch few rows: edit those strings, then scatter them back.
    sel = rows[codes == "malformed_msisdn"]
    if len(sel):
        edits = (lambda v: v + "7", lambda v: "0" + v[3:], lambda v: v[:5] + "O" + v[6:])  # too long, national, letter
        old = table.column("served_msisdn").take(pa.array(sel)).to_pylist()
        new = [edits[i](v) if v else "+" for v, i in zip(old, rng.integers(0, len(edits), len(sel)))]
        table = _replace_rows(table, "served_msisdn", sel, new)
    sel = rows[codes == "invalid_imei"]
    if len(sel):
        old = table.column("served_imei").take(pa.array(sel)).to_pylist()
        new = [v[:14] + str((int(v[14]) + int(r)) % 10) for v, r in zip(old, rng.integers(1, 10, len(sel)))]
        table = _replace_rows(table, "served_imei", sel, new)
    ts = np.asarray(table.column("start_time").cast(pa.int64()).fill_null(0))
    m = at("timestamp_future")
    if m.any():
        table = _set(table, "start_time", m, pa.array(ts + FUTURE_SHIFT_US, pa.timestamp("us", tz="UTC")))
    m = at("timestamp_past")
    if m.any():
        past = FAR_PAST_US + rng.integers(0, 3650, n) * US_PER_DAY + ts % US_PER_DAY
        table = _set(table, "start_time", m, pa.array(past, pa.timestamp("us", tz="UTC")))
    m = at("unknown_cell")
    if m.any():
        cell = table.column("cell_id")
        bogus = pc.binary_join_element_wise(pc.utf8_slice_codeunits(cell, 0, 6), pa.scalar("99"),
                                            pc.utf8_slice_codeunits(cell, 8), "")
        table = _set(table, "cell_id", m, bogus)
        table = _set(table, "roaming", m, pa.array(np.zeros(n, bool)))
        table = _set(table, "visited_plmn", m, pa.nulls(n, pa.string()))
    if record_type in DURATION_TYPES:
        dur = np.asarray(table.column("duration_s").fill_null(0))
        m = at("negative_duration")
        if m.any():
            table = _set(table, "duration_s", m, pa.array(-(np.abs(dur) + rng.integers(1, 600, n)).astype(np.int32)))
        m = at("duration_over_24h")
        if m.any():
            table = _set(table, "duration_s", m, pa.array(rng.integers(86_401, 400_000, n).astype(np.int32)))
    if record_type == "data":
        m = at("negative_bytes")
        if m.any():
            which = rng.integers(0, 2, n)
            for i, name in enumerate(("bytes_uplink", "bytes_downlink")):
                v = np.asarray(table.column(name).fill_null(0))
                table = _set(table, name, m & (which == i), pa.array(-(v + 1)))
    dup_rows = rows[codes == "duplicate"]
    if len(dup_rows):
        table = pa.concat_tables([table, table.take(pa.array(dup_rows))])
    text = {c: rows[codes == c] for c in ("wrong_type", "truncated_line") if (codes == c).any()}
    record_ids = table.column("record_id").take(pa.array(rows)).to_pylist()
    return Injected(table, _labels(record_ids, list(codes), record_type), text)


def _replace_rows(table: pa.Table, name: str, rows: np.ndarray, values: list) -> pa.Table:
    i = table.schema.get_field_index(name)
    field = table.schema.field(name)
    index = np.arange(table.num_rows)
    index[rows] = table.num_rows + np.arange(len(rows))
    merged = pa.concat_arrays([table.column(i).combine_chunks(), pa.array(values, field.type)])
    return table.set_column(i, field, merged.take(pa.array(index)))


def _labels(record_ids: list[str], codes: list[str], record_type: str) -> pa.Table:
    from cdr.contract import DEFECT_LABELS, arrow_schema

    return pa.table({"record_id": record_ids, "record_type": [record_type] * len(record_ids), "defect": codes},
                    schema=arrow_schema(DEFECT_LABELS))
