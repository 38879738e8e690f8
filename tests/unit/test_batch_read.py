"""Reading raw files: every row kept with a parse code, unreadable files named and set aside."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.read import PARSE_CODE, read_cdr
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)
from cdr.contract import RECORD_TYPES, arrow_schema

pytestmark = pytest.mark.spark
SMS = RECORD_TYPES["sms"]
GOOD = {"record_id": "S1", "record_type": "sms", "start_time": "2026-01-05T10:00:00.000001Z",
        "served_msisdn": "213661234567", "served_imsi": "603011234567890", "served_imei": "490154203237518",
        "cell_id": "60301-00001-1", "access_technology": "4G", "roaming": False, "visited_plmn": None,
        "other_party": "213771234567", "direction": "MO", "sms_status": "delivered", "message_length": 40}


def test_json_lines_keep_wrong_types_and_cut_lines(spark, tmp_path):
    lines = [json.dumps(GOOD), json.dumps(dict(GOOD, record_id="S2", message_length="forty")),
             json.dumps(dict(GOOD, record_id="S3"))[:60], "not json at all"]
    path = tmp_path / "part-0.jsonl"
    path.write_text("\n".join(lines) + "\n")
    df, rejected = read_cdr(spark, [f"file://{path}"], SMS, "jsonl")
    assert rejected == []
    assert_frames_equal(df.select("record_id", PARSE_CODE), spark.createDataFrame(
        [("S1", None), (None, "wrong_type|message_length"), (None, "truncated_line"), (None, "unparseable")],
        f"record_id string, {PARSE_CODE} string"))
    typed = df.filter("record_id = 'S1'").first()
    assert typed["message_length"] == 40 and typed["start_time"].microsecond == 1


def test_csv_with_a_wrong_header_is_rejected_by_name_and_others_load(spark, tmp_path):
    header = ",".join(f'"{f}"' for f in SMS.field_names)
    row = ",".join("" if GOOD[f] is None else str(GOOD[f]).lower() if isinstance(GOOD[f], bool) else str(GOOD[f])
                   for f in SMS.field_names)
    good, bad, empty = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    good.write_text(f"{header}\n{row}\n{row.replace(',40', ',forty')}\n")
    bad.write_text(f"id,when,who\n{row}\n")
    empty.write_text("")
    df, rejected = read_cdr(spark, [f"file://{p}" for p in (good, bad, empty)], SMS, "csv")
    assert [r.path.rsplit("/", 1)[-1] for r in rejected] == ["b.csv"]
    assert "header" in rejected[0].reason
    assert_frames_equal(df.select("record_id", PARSE_CODE), spark.createDataFrame(
        [("S1", None), (None, "wrong_type|message_length")], f"record_id string, {PARSE_CODE} string"))


def test_a_truncated_parquet_file_is_rejected_and_the_others_load(spark, tmp_path):
    table = pa.Table.from_pylist([dict(GOOD, start_time=None)], schema=arrow_schema(SMS))
    good, cut = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(table, good)
    pq.write_table(table, cut)
    cut.write_bytes(cut.read_bytes()[:40])
    df, rejected = read_cdr(spark, [f"file://{good}", f"file://{cut}"], SMS, "parquet")
    assert [r.path.rsplit("/", 1)[-1] for r in rejected] == ["b.parquet"]
    assert [r["record_id"] for r in df.collect()] == ["S1"]
