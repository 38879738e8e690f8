"""The serving layer's batch views (serving.views) on small inline fact_usage rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)
from serving import views

pytestmark = pytest.mark.spark
D = dt.date(2026, 1, 5)
H10 = dt.datetime(2026, 1, 5, 10)
H11 = dt.datetime(2026, 1, 5, 11)
USAGE = ("date date, start_time timestamp, cell_id string, service string, call_result string, direction string, "
         "subscriber_key string, plan string, roaming boolean, billing_category string, duration_s int, "
         "bytes_total long, units double, rated_charge_dzd double")


def _usage(spark):
    m = dt.timedelta(minutes=1)
    return spark.createDataFrame([
        (D, H10 + m, "c1", "voice", "answered", "MO", "s1", "prepaid", False, "voice", 61, 0, 2.0, 10.0),
        (D, H10 + 2 * m, "c1", "voice", "dropped", "MT", "s2", "postpaid", False, "voice", 5, 0, 1.0, 0.0),
        (D, H10 + 3 * m, "c1", "voice", "failed", "MO", "s1", "prepaid", False, "voice", 0, 0, 0.0, 0.0),
        (D, H10 + 4 * m, "c1", "sms", None, "MO", "s1", "prepaid", False, "sms", None, 0, 1.0, 5.0),
        (D, H10 + 5 * m, "c2", "data", None, None, "s2", None, True, "data", 600, 3_000_000, 3.0, 0.5),
        (D, H11 + m, "c1", "voip", "answered", "MO", "s1", "prepaid", False, "voice", 30, 100, 1.0, 0.0),
    ], USAGE)


def test_cell_hour_counts_what_the_stream_counts_per_cell_and_hour(spark):
    expected = spark.createDataFrame([
        (D, H10, "c1", 3, 1, 2, 1, 0),
        (D, H10, "c2", 0, 0, 0, 0, 3_000_000),
        (D, H11, "c1", 0, 1, 0, 0, 100),  # a VoIP answer counts as answered, not as a voice attempt
    ], "day date, hour_start timestamp, cell_id string, call_attempts long, answered long, "
       "dropped_or_failed long, sms long, data_bytes long")
    assert_frames_equal(views.cell_hour(_usage(spark)), expected)


def test_service_hour_adds_what_only_the_batch_knows(spark):
    expected = spark.createDataFrame([
        (D, H10, "voice", 3, 1, 2, 0, 66, Decimal("10.00")),
        (D, H10, "sms", 1, 0, 0, 0, 0, Decimal("5.00")),
        (D, H10, "data", 1, 0, 0, 3_000_000, 600, Decimal("0.50")),
        (D, H11, "voip", 1, 1, 0, 100, 30, Decimal("0.00")),
    ], "day date, hour_start timestamp, service string, records long, answered long, dropped_or_failed long, "
       "data_bytes long, duration_s long, rated_charge_dzd decimal(16,2)")
    assert_frames_equal(views.service_hour(_usage(spark)), expected)


def test_subscriber_day_and_revenue_day(spark):
    usage = _usage(spark)
    subscribers = spark.createDataFrame([
        (D, "s1", "prepaid", 3, 0, 91, 1, 0, 100, 0, Decimal("15.00")),
        (D, "s2", "postpaid", 0, 1, 5, 0, 1, 3_000_000, 1, Decimal("0.50")),
    ], "day date, subscriber_key string, plan string, calls_out long, calls_in long, call_seconds long, "
       "sms_out long, data_sessions long, data_bytes long, roaming_events long, rated_charge_dzd decimal(16,2)")
    assert_frames_equal(views.subscriber_day(usage), subscribers)
    revenue = spark.createDataFrame([
        (D, "voice", "voice", "prepaid", 2, 2.0, Decimal("10.00")),
        (D, "voice", "voice", "postpaid", 1, 1.0, Decimal("0.00")),
        (D, "sms", "sms", "prepaid", 1, 1.0, Decimal("5.00")),
        (D, "data", "data", "unknown", 1, 3.0, Decimal("0.50")),
        (D, "voip", "voice", "prepaid", 1, 1.0, Decimal("0.00")),
    ], "day date, service string, billing_category string, plan string, events long, units double, "
       "rated_charge_dzd decimal(16,2)")
    assert_frames_equal(views.revenue_day(usage), revenue)


def test_records_day_sums_the_reconciliation_of_each_type(spark):
    recon = spark.createDataFrame([
        ("b1", "voice", 10, 7, 2, 1, D, 0, True),
        ("b1", "sms", 4, 4, 0, 0, D, 1, True),
    ], "batch_id string, record_type string, records_in bigint, clean bigint, quarantined bigint, "
       "duplicates bigint, date date, files_rejected bigint, balanced boolean")
    expected = spark.createDataFrame([(D, "voice", 10, 7, 2, 1, 0), (D, "sms", 4, 4, 0, 0, 1)],
                                     "day date, record_type string, records_in long, clean long, quarantined long, "
                                     "duplicates long, files_rejected long")
    assert_frames_equal(views.records_day(recon), expected)
