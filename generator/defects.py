"""Injected data-quality defects, each with a documented code, labelled by record id.

Typed defects are applied to the Arrow table; the two that only exist in text files
(``wrong_type``, ``truncated_line``) are returned as row positions for the text writers.
The codes are the validation rule codes of the shared contract (cdr.validation), so the
batch layer's quarantine can be scored code by code. Only the few defective rows are
touched (gathered, edited, scattered back), so injection costs little at any rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cdr.contract import DEFECT_LABELS, arrow_schema
from cdr.validation import DEFECT_CODES
from generator.arrow_util import replace_rows

DURATION_TYPES = ("voice", "data", "voip", "ims")
MISSABLE = ("served_msisdn", "start_time", "cell_id", "access_technology")
FUTURE_SHIFT_US = 20 * 365 * 86_400_000_000  # 20 years ahead: in the future for any processing date
FAR_PAST_US = 631_152_000_000_000  # 1990-01-01T00:00:00Z
US_PER_DAY = 86_400_000_000
TEXT_ONLY = ("wrong_type", "truncated_line")


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
        return Injected(table, labels_table([], [], record_type), {})
    rows = np.sort(rng.choice(n, size=k, replace=False))
    choices = applicable_codes(record_type, file_format)
    codes = np.array(choices, dtype=object)[rng.integers(0, len(choices), k)]
    # A handset defect needs a handset: fixed lines get a malformed number instead.
    no_imei = np.asarray(table.column("served_imei").take(pa.array(rows)).is_null())
    codes[(codes == "invalid_imei") & no_imei] = "malformed_msisdn"

    def rows_of(code: str) -> np.ndarray:
        return rows[codes == code]

    def values(name: str, sel: np.ndarray) -> list:
        return table.column(name).take(pa.array(sel)).to_pylist()

    # Edits are collected per column and applied once each (rows of different codes are disjoint).
    edits: dict[str, list[tuple[np.ndarray, pa.Array | list]]] = {}

    def edit(name: str, sel: np.ndarray, new: pa.Array | list) -> None:
        edits.setdefault(name, []).append((sel, new))

    sel = rows_of("missing_field")
    which = rng.integers(0, len(MISSABLE), len(sel))
    for i, name in enumerate(MISSABLE):
        if (which == i).any():
            edit(name, sel[which == i], [None] * int((which == i).sum()))

    sel = rows_of("malformed_msisdn")
    if len(sel):
        edits_ = (lambda v: v + "7", lambda v: "0" + v[3:], lambda v: v[:5] + "O" + v[6:])  # too long, national, letter O
        edit("served_msisdn", sel, [edits_[i](v) for v, i in zip(values("served_msisdn", sel),
                                                                 rng.integers(0, len(edits_), len(sel)))])

    sel = rows_of("invalid_imei")
    if len(sel):
        edit("served_imei", sel, [v[:14] + str((int(v[14]) + int(r)) % 10)
                                  for v, r in zip(values("served_imei", sel), rng.integers(1, 10, len(sel)))])

    ts_type = pa.timestamp("us", tz="UTC")
    sel = rows_of("timestamp_future")
    if len(sel):
        ts = np.asarray(table.column("start_time").take(pa.array(sel)).cast(pa.int64()).fill_null(0))
        edit("start_time", sel, pa.array(ts + FUTURE_SHIFT_US, ts_type))
    sel = rows_of("timestamp_past")
    if len(sel):
        past = FAR_PAST_US + rng.integers(0, 3650 * US_PER_DAY, len(sel))
        edit("start_time", sel, pa.array(past, ts_type))

    sel = rows_of("unknown_cell")
    if len(sel):
        # Site numbers at or above 90000 are never assigned; '99' in their place makes an unknown cell.
        edit("cell_id", sel, [v[:6] + "99" + v[8:] for v in values("cell_id", sel)])
        edit("roaming", sel, [False] * len(sel))
        edit("visited_plmn", sel, [None] * len(sel))

    if record_type in DURATION_TYPES:
        sel = rows_of("negative_duration")
        if len(sel):
            edit("duration_s", sel, (-rng.integers(1, 3600, len(sel))).tolist())
        sel = rows_of("duration_over_24h")
        if len(sel):
            edit("duration_s", sel, rng.integers(86_401, 400_000, len(sel)).tolist())
    if record_type == "data":
        sel = rows_of("negative_bytes")
        which = rng.integers(0, 2, len(sel))
        for i, name in enumerate(("bytes_uplink", "bytes_downlink")):
            part = sel[which == i]
            if len(part):
                edit(name, part, [-(v or 0) - 1 for v in values(name, part)])

    for name, changes in edits.items():
        field_type = table.schema.field(name).type
        value_type = field_type.value_type if pa.types.is_dictionary(field_type) else field_type
        sel = np.concatenate([c[0] for c in changes])
        new = pa.concat_arrays([c[1] if isinstance(c[1], pa.Array) else pa.array(c[1], value_type)
                                for c in changes]) if len(changes) > 1 else changes[0][1]
        table = replace_rows(table, name, sel, new)

    duplicated = rows_of("duplicate")
    if len(duplicated):
        table = pa.concat_tables([table, table.take(pa.array(duplicated))])
    text = {c: rows_of(c) for c in TEXT_ONLY if (codes == c).any()}
    record_ids = table.column("record_id").take(pa.array(rows)).to_pylist()
    return Injected(table, labels_table(record_ids, codes.tolist(), record_type), text)


def labels_table(record_ids: list[str], codes: list[str], record_type: str) -> pa.Table:
    return pa.table({"record_id": record_ids, "record_type": [record_type] * len(record_ids), "defect": codes},
                    schema=arrow_schema(DEFECT_LABELS))
