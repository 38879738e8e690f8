"""The Spark interpreter of the shared rules agrees with the Python one, and tags every row."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F

from batch.read import PARSE_CODE, RAW_JSON, SOURCE_FILE, read_cdr, read_reference
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)
from batch.validate import CODE, FIELD, quarantine_records, reconciliation, tag_records
from cdr.contract import CELLS, RECORD_TYPES, spark_schema
from cdr.profile import load_profile
from cdr.validation import Context, check_record, rules_for
from generator.dataset import GenerateOptions, generate_dataset
from tests import validation_cases as cases
from tests.validation_engines import spark_verdicts

pytestmark = pytest.mark.spark
UTC = dt.timezone.utc
REF = dt.datetime(2026, 1, 10, tzinfo=UTC)
PROFILE = load_profile()
VOICE = RECORD_TYPES["voice"]
CELL = "60301-00001-1"
GOOD = dict(record_id="V1", record_type="voice", start_time=dt.datetime(2026, 1, 9, 10, tzinfo=UTC),
            served_msisdn="213661234567", served_imsi="603011234567890", served_imei="490154203237518",
            cell_id=CELL, access_technology="4G", roaming=False, visited_plmn=None,
            other_party="213771234567", direction="MO", duration_s=60, call_result="answered")


def _raw(spark, records):
    df = spark.createDataFrame([Row(**r) for r in records], spark_schema(VOICE))
    return df.withColumn(RAW_JSON, F.to_json(F.struct(*VOICE.field_names))) \
        .withColumn(PARSE_CODE, F.lit(None).cast("string")).withColumn(SOURCE_FILE, F.lit("f1"))


def test_each_rule_kind_gives_its_code_and_field(spark):
    cases = {
        "V1": ({}, None, None),
        "V2": ({"served_msisdn": None}, "missing_field", "served_msisdn"),
        "V3": ({"served_msisdn": "21366123"}, "malformed_msisdn", "served_msisdn"),
        "V4": ({"served_imei": "490154203237519"}, "invalid_imei", "served_imei"),
        "V5": ({"duration_s": -1}, "negative_duration", "duration_s"),
        "V6": ({"duration_s": 86_401}, "duration_over_24h", "duration_s"),
        "V7": ({"start_time": dt.datetime(2046, 1, 1, tzinfo=UTC)}, "timestamp_future", "start_time"),
        "V8": ({"start_time": dt.datetime(2001, 1, 1, tzinfo=UTC)}, "timestamp_past", "start_time"),
        "V9": ({"cell_id": "nowhere"}, "unknown_cell", "cell_id"),
        "VA": ({"cell_id": "20801-00001-1", "roaming": True, "visited_plmn": "20801"}, None, None),
        "VB": ({"direction": "XX"}, "invalid_value", "direction"),
        "VC": ({"other_party": "0123"}, "malformed_other_party", "other_party"),
    }
    records = [dict(GOOD, record_id=rid, **change) for rid, (change, _, _) in cases.items()]
    records.append(dict(GOOD, record_id="V1"))  # a second copy of V1
    cells = spark.createDataFrame([(CELL,)], "cell_id string")
    tagged = tag_records(_raw(spark, records), rules_for(VOICE, PROFILE), cells, REF)
    expected = [(rid, code, fld) for rid, (_, code, fld) in cases.items()] + [("V1", "duplicate", "record_id")]
    assert_frames_equal(tagged.select("record_id", CODE, FIELD),
                         spark.createDataFrame(expected, f"record_id string, {CODE} string, {FIELD} string"))
    # The Python interpreter of the same declarations agrees on every record.
    ctx = Context(REF, frozenset([CELL]))
    for rid, (change, code, _) in cases.items():
        violation = check_record(dict(GOOD, **change), rules_for(VOICE, PROFILE), ctx)
        assert (violation.code if violation else None) == code, rid


def test_the_lines_the_engines_disagreed_on_get_the_shared_verdict(spark, tmp_path):
    """Read from a JSON Lines file as `cdr batch run` reads one (tests/validation_cases.py); a record
    of another type in the voice file is of an unknown type (the batch layer knows the file's type)."""
    misfiled = cases.Case("misfiled-sms", json.dumps(dict(cases.VOICE, record_id="case-misfiled-sms",
                                                          record_type="sms")), "unknown_record_type", "record_type")
    examples = [*cases.CASES, cases.IN_ARRAY, misfiled]
    got = spark_verdicts(spark, [case.line for case in examples], ["voice"] * len(examples), [cases.CELL], cases.NOW,
                         tmp_path)
    assert dict(zip([case.name for case in examples], got)) == {case.name: (case.code, case.field) for case in examples}


def test_quarantine_rows_and_reconciliation_are_exact(spark):
    records = [GOOD, dict(GOOD), dict(GOOD, record_id="V2", duration_s=-5)]
    cells = spark.createDataFrame([(CELL,)], "cell_id string")
    tagged = tag_records(_raw(spark, records), rules_for(VOICE, PROFILE), cells, REF)
    q = quarantine_records(tagged, VOICE, "b1").select("batch_id", "record_id", "rule_code", "reason", "source_file")
    assert_frames_equal(q, spark.createDataFrame([
        ("b1", "V1", "duplicate", "exact duplicate of a record already accepted (record_id)", "f1"),
        ("b1", "V2", "negative_duration", "the duration is negative (duration_s)", "f1"),
    ], "batch_id string, record_id string, rule_code string, reason string, source_file string"))
    recon = reconciliation(tagged, VOICE, "b1").drop("batch_id", "record_type")
    assert_frames_equal(recon, spark.createDataFrame(
        [(3, 1, 1, 1, 0, True)],
        "records_in long, clean long, quarantined long, duplicates long, files_rejected int, balanced boolean"))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_exactly_the_labelled_defects_are_caught_with_their_code(spark, tmp_path_factory, fmt):
    out = tmp_path_factory.mktemp(f"batch-{fmt}") / "ds"
    ds = generate_dataset(GenerateOptions(out=out, subscribers=200, days=1, start=dt.date(2025, 12, 31), seed=5,
                                          defect_rate=0.05, file_format=fmt)).out
    cells = read_reference(spark, f"file://{ds}/cells", CELLS, fmt)
    found = {}
    for name, rt in RECORD_TYPES.items():
        files = [f"file://{p}" for p in sorted((ds / "cdr" / f"record_type={name}").rglob(f"*.{fmt}"))]
        raw, rejected = read_cdr(spark, files, rt, fmt)
        assert rejected == []
        q = quarantine_records(tag_records(raw, rules_for(rt, PROFILE), cells, REF), rt, "b")
        found.update({r["record_id"]: r["rule_code"] for r in q.collect()})
    labels = spark.read.schema("record_id string, record_type string, defect string")
    path = f"file://{ds}/labels/defects.{fmt}"
    labels = (labels.parquet(path) if fmt == "parquet" else
              labels.option("header", "true").csv(path) if fmt == "csv" else labels.json(path))
    expected = {r["record_id"]: r["defect"] for r in labels.collect()}
    assert len(expected) > 20
    assert found == expected
