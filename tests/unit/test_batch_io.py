"""Write-then-swap partitions and tables, on a file:// root with the in-memory catalogue."""

from __future__ import annotations

import datetime as dt

import pytest

from batch.io import Zones, list_dirs, write_partition, write_table
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)

pytestmark = pytest.mark.spark
D1, D2 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)
SCHEMA = "id string, n int, date date"


def test_rewriting_a_partition_replaces_exactly_that_day(spark, tmp_path):
    zones = Zones(f"file://{tmp_path}", db_prefix="io1_")
    write_partition(spark, zones, "cdr_dw", "t", spark.createDataFrame([("a", 1, D1)], SCHEMA), "date", D1)
    write_partition(spark, zones, "cdr_dw", "t", spark.createDataFrame([("b", 2, D2)], SCHEMA), "date", D2)
    write_partition(spark, zones, "cdr_dw", "t", spark.createDataFrame([("c", 3, D1)], SCHEMA), "date", D1)
    assert_frames_equal(spark.table("io1_cdr_dw.t").select("id", "n", "date"),
                        spark.createDataFrame([("c", 3, D1), ("b", 2, D2)], SCHEMA))
    # No staging folder is left behind.
    assert list_dirs(spark, f"file://{tmp_path}/analytics/cdr_dw/t") == ["date=2026-01-05", "date=2026-01-06"]


def test_a_table_follows_its_root_and_its_schema(spark, tmp_path):
    first = Zones(f"file://{tmp_path}/one", db_prefix="io2_")
    second = Zones(f"file://{tmp_path}/two", db_prefix="io2_")
    write_table(spark, first, "cdr_dw", "d", spark.createDataFrame([("a", 1)], "id string, n int"))
    write_table(spark, second, "cdr_dw", "d", spark.createDataFrame([("b", 2.5)], "id string, x double"))
    assert_frames_equal(spark.table("io2_cdr_dw.d"), spark.createDataFrame([("b", 2.5)], "id string, x double"))
