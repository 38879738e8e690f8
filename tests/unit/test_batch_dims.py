"""Subscriber SCD2 history and the small dimensions."""

from __future__ import annotations

import datetime as dt

import pytest

from batch import dims
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)
from cdr.profile import load_profile

pytestmark = pytest.mark.spark
D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 2, 1)
ACT = dt.date(2025, 1, 1)
SNAP = ("subscriber_key string, imsi_key string, plan string, line_type string, payment string, segment string, "
        "region string, region_code int, home_cell_id string, activation_date date, status string, tenure_days int")
DIM = SNAP + ", valid_from date, valid_to date, is_current boolean"


def _snap(spark, plan_a, status_b, tenure):
    return spark.createDataFrame([
        ("a", "ia", plan_a, "mobile", "prepaid", "consumer", "Alger", 16, "c1", ACT, "active", tenure),
        ("b", "ib", "P1", "mobile", "prepaid", "consumer", "Oran", 31, "c2", ACT, status_b, tenure),
    ], SNAP)


def test_plan_change_closes_the_row_and_opens_a_new_one(spark):
    first = dims.scd2_subscribers(None, _snap(spark, "P1", "active", 365), D1)
    again = dims.scd2_subscribers(first, _snap(spark, "P1", "active", 365), D1)
    assert_frames_equal(again, first)  # reloading the same day changes nothing
    second = dims.scd2_subscribers(first, _snap(spark, "P2", "suspended", 396), D2)
    end = dims.OPEN_END
    expected = spark.createDataFrame([
        ("a", "ia", "P1", "mobile", "prepaid", "consumer", "Alger", 16, "c1", ACT, "active", 396, ACT,
         dt.date(2026, 1, 31), False),
        ("a", "ia", "P2", "mobile", "prepaid", "consumer", "Alger", 16, "c1", ACT, "active", 396, D2, end, True),
        ("b", "ib", "P1", "mobile", "prepaid", "consumer", "Oran", 31, "c2", ACT, "suspended", 396, ACT, end, True),
    ], DIM)
    assert_frames_equal(second.select(*expected.columns), expected)


def test_dim_cell_knows_the_nearest_other_site(spark):
    cells = spark.createDataFrame([
        ("60301-00001-1", "M", 36.0, 3.0, "Alger", 16, "4G"), ("60301-00001-2", "M", 36.0, 3.0, "Alger", 16, "4G"),
        ("60301-00002-1", "M", 37.0, 3.0, "Alger", 16, "4G"), ("60302-00003-1", "D", 30.0, 3.0, "Adrar", 1, "3G"),
    ], "cell_id string, operator string, latitude double, longitude double, region string, region_code int, "
       "technology string")
    near = {r["cell_id"]: r["nearest_site_km"] for r in dims.dim_cell(spark, cells).collect()}
    assert near["60301-00001-1"] == near["60301-00001-2"] == pytest.approx(111.2, abs=0.5)
    assert near["60302-00003-1"] == 0.0  # alone for its operator


def test_calendar_has_whole_years_and_the_algerian_weekend(spark):
    d = dims.dim_date(spark, dt.date(2025, 12, 31), dt.date(2026, 1, 2), load_profile())
    assert d.count() == 365 + 365
    friday = d.filter("date = DATE'2026-01-02'").first()
    assert friday["is_weekend"] and friday["date_key"] == 20260102 and friday["month_key"] == "2026-01"
