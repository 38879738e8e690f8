"""Write-then-swap partitions and tables, on a file:// root with the in-memory catalogue."""

from __future__ import annotations

import datetime as dt

import pytest

from batch.io import Warehouse, Zones, list_dirs
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)

pytestmark = pytest.mark.spark
D1, D2, D3 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)
SCHEMA = "id string, n int, date date"


def test_rewriting_partitions_replaces_exactly_those_days(spark, tmp_path):
    zones = Zones(f"file://{tmp_path}", db_prefix="io1_")
    rows = spark.createDataFrame([("a", 1, D1), ("b", 2, D2), ("d", 4, D3)], SCHEMA)
    Warehouse(spark, zones).write_partitions("cdr_dw", "t", rows, "date", [D1, D2, D3])
    # A later run (a new warehouse: nothing cached) rewrites D1 and D2; D2 has no rows any more.
    Warehouse(spark, zones).write_partitions("cdr_dw", "t", spark.createDataFrame([("c", 3, D1)], SCHEMA),
                                             "date", [D1, D2])
    assert_frames_equal(spark.table("io1_cdr_dw.t").select("id", "n", "date"),
                        spark.createDataFrame([("c", 3, D1), ("d", 4, D3)], SCHEMA))
    # No staging folder is left behind.
    assert list_dirs(spark, f"file://{tmp_path}/analytics/cdr_dw/t") == [f"date={d}" for d in (D1, D2, D3)]


def test_rows_outside_the_partitions_being_replaced_are_refused(spark, tmp_path):
    zones = Zones(f"file://{tmp_path}", db_prefix="io3_")
    rows = spark.createDataFrame([("a", 1, D1), ("b", 2, D2)], SCHEMA)
    with pytest.raises(ValueError, match="date=2026-01-06"):
        Warehouse(spark, zones).write_partitions("cdr_dw", "t", rows, "date", [D1])
    assert list_dirs(spark, f"file://{tmp_path}/analytics/cdr_dw/t") == []


def test_a_table_follows_its_root_and_its_schema(spark, tmp_path):
    first = Zones(f"file://{tmp_path}/one", db_prefix="io2_")
    second = Zones(f"file://{tmp_path}/two", db_prefix="io2_")
    Warehouse(spark, first).write_table("cdr_dw", "d", spark.createDataFrame([("a", 1)], "id string, n int"))
    Warehouse(spark, second).write_table("cdr_dw", "d", spark.createDataFrame([("b", 2.5)], "id string, x double"))
    assert_frames_equal(spark.table("io2_cdr_dw.d"), spark.createDataFrame([("b", 2.5)], "id string, x double"))
