"""`cdr batch score` counts the labelled dataset's days only, whatever else the warehouse holds."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from batch.frames import local_frame
from batch.io import Zones
from batch.jobs import RECONCILIATION_SCHEMA
from batch.score import defect_catch, defect_report, false_quarantine
from batch.testing import spark  # noqa: F401  (spark: session-scoped fixture)

pytestmark = pytest.mark.spark
DAY, OTHER_DAY = dt.date(2026, 1, 5), dt.date(2026, 2, 1)
QUARANTINE = "record_id string, rule_code string, date date"


@pytest.fixture()
def warehouse(spark, tmp_path):
    """A dataset of one day with two labelled defects, and cdr_ops tables holding that day and
    another one (whose record ids happen to repeat a label's)."""
    dataset = tmp_path / "dataset"
    (dataset / "cdr" / "record_type=voice" / f"date={DAY}").mkdir(parents=True)
    (dataset / "labels").mkdir()
    (dataset / "manifest.json").write_text(json.dumps({"format": "csv"}))
    (dataset / "labels" / "defects.csv").write_text(
        "record_id,record_type,defect\nL1,voice,invalid_imei\nL2,voice,missing_field\n")
    zones = Zones(f"file://{tmp_path}/zones", db_prefix="score_")
    spark.sql("CREATE DATABASE IF NOT EXISTS score_cdr_ops")
    local_frame(spark, [("L1", "invalid_imei", DAY), ("X1", "unknown_cell", DAY),
                        ("L2", "missing_field", OTHER_DAY), ("Y1", "unknown_cell", OTHER_DAY)],
                QUARANTINE).write.mode("overwrite").saveAsTable("score_cdr_ops.quarantine")
    local_frame(spark, [("b1", "voice", 1000, 997, 2, 1, DAY, 0, True),
                        ("b2", "voice", 500, 498, 2, 0, OTHER_DAY, 0, True)],
                RECONCILIATION_SCHEMA).write.mode("overwrite").saveAsTable("score_cdr_ops.reconciliation")
    yield zones, f"file://{dataset}"
    spark.sql("DROP DATABASE score_cdr_ops CASCADE")


def test_defects_and_false_quarantines_count_the_dataset_days_only(spark, warehouse):
    zones, dataset = warehouse
    caught = {r["defect"]: (r["labelled"], r["caught"], r["caught_same_code"])
              for r in defect_catch(spark, zones, dataset).collect()}
    # L2 sits in the other day's quarantine: not this dataset's record, so not caught.
    assert caught == {"invalid_imei": (1, 1, 1), "missing_field": (1, 0, 0)}
    assert false_quarantine(spark, zones, dataset) == (1, 997)
    assert "reconciliation: in 1000 = clean 997 + quarantined 2 + duplicates 1 (balanced)" in \
        defect_report(spark, zones, dataset)
