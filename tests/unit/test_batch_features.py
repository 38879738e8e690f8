"""Hourly network features and service trends."""

from __future__ import annotations

import datetime as dt

import pytest

from batch import features
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)

pytestmark = pytest.mark.spark
UTC = dt.timezone.utc
H10 = dt.datetime(2026, 1, 5, 10, tzinfo=UTC)
D = dt.date(2026, 1, 5)


def test_cell_hourly_counts_calls_drops_sms_bytes_and_subscribers(spark):
    usage = spark.createDataFrame([
        (D, H10 + dt.timedelta(minutes=1), "c1", "voice", "answered", "a", None),
        (D, H10 + dt.timedelta(minutes=2), "c1", "voice", "dropped", "b", None),
        (D, H10 + dt.timedelta(minutes=3), "c1", "voice", "failed", "a", None),
        (D, H10 + dt.timedelta(minutes=4), "c1", "sms", None, "a", None),
        (D, H10 + dt.timedelta(minutes=5), "c1", "data", None, "c", 1000),
    ], "date date, start_time timestamp, cell_id string, service string, call_result string, "
       "subscriber_key string, bytes_total long")
    expected = spark.createDataFrame(
        [(D, H10, "c1", 5, 3, 1, 1, 1, 1, 1000, 3, 0.5)],
        "date date, hour timestamp, cell_id string, events long, call_attempts long, calls_answered long, "
        "calls_dropped long, calls_failed long, sms long, bytes long, distinct_subscribers long, drop_rate double")
    assert_frames_equal(features.cell_hourly(usage), expected)


def test_service_trends_moving_averages_and_growth(spark):
    days = [(D + dt.timedelta(days=i), "sms", 100 + 10 * i) for i in range(8)]
    trends = features.service_trends(spark.createDataFrame(days, "date date, service string, events long"))
    last = trends.filter(f"date = DATE'{D + dt.timedelta(days=7)}'").first()
    assert last["events_ma7"] == pytest.approx(sum(100 + 10 * i for i in range(1, 8)) / 7, abs=0.01)
    assert last["events_ma28"] == pytest.approx(sum(100 + 10 * i for i in range(8)) / 8, abs=0.01)
    assert last["growth_day"] == pytest.approx(10 / 160, abs=1e-4)
    assert last["growth_week"] == pytest.approx(70 / 100, abs=1e-4)
