"""Driver-side rows become a local relation held by the JVM, with the rows and types given."""

from __future__ import annotations

import datetime as dt

import pytest

from batch.frames import local_frame
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)

pytestmark = pytest.mark.spark
SCHEMA = "n int, s string, d date, b boolean, x binary, f double, big bigint"
ROWS = [(1, "a", dt.date(2026, 1, 5), True, bytearray(b"\x01\x02"), 1.5, 2**40),
        (None, None, None, None, None, None, None)]


def _plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def test_rows_keep_their_values_and_types_and_no_python_reads_them(spark):
    frame = local_frame(spark, ROWS, SCHEMA)
    # spark.createDataFrame(list), the slow path it replaces, as the reference (schema compared too).
    assert_frames_equal(frame, spark.createDataFrame(ROWS, SCHEMA))
    assert _plan(frame).startswith("LocalTableScan")


def test_dict_rows_are_taken_by_field_name_and_no_rows_give_an_empty_frame(spark):
    by_name = [dict(zip(["big", "f", "x", "b", "d", "s", "n"], reversed(row))) for row in ROWS]
    assert_frames_equal(local_frame(spark, by_name, SCHEMA), spark.createDataFrame(ROWS, SCHEMA))
    empty = local_frame(spark, [], SCHEMA)
    assert empty.count() == 0 and empty.schema == spark.createDataFrame(ROWS, SCHEMA).schema
