"""Rating of usage at list price, daily billing and monthly invoice lines with bundles and VAT."""

from __future__ import annotations

import datetime as dt

import pytest

from batch import dims, facts
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)
from cdr.profile import load_profile

pytestmark = pytest.mark.spark
UTC = dt.timezone.utc
T = dt.datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
EVENTS = ("record_id string, record_type string, start_time timestamp, served_msisdn string, served_imsi string, "
          "served_imei string, device_tac string, cell_id string, access_technology string, roaming boolean, "
          "visited_plmn string, other_party string, other_party_international boolean, direction string, "
          "duration_s int, call_result string, sms_status string, ims_service string, sip_status int, "
          "bytes_uplink long, bytes_downlink long")


def _event(rid, rt, direction=None, duration=None, result=None, sms=None, intl=False, up=None, down=None):
    return (rid, rt, T, "s1", "i1", "e1", "49015420", "c1", "4G", False, None, "o1" if rt != "data" else None,
            intl, direction, duration, result, sms, None, None, up, down)


def _dims(spark):
    profile = load_profile()
    subs = spark.createDataFrame([("s1", "MOB_PRE_BASIC", dt.date(2025, 1, 1), dt.date(9999, 12, 31))],
                                 "subscriber_key string, plan string, valid_from date, valid_to date")
    return subs, dims.dim_tariff(spark, profile), dims.dim_service(spark)


def test_billable_usage_is_rated_with_the_plan(spark):
    events = spark.createDataFrame([
        _event("V1", "voice", "MO", 61, "answered"),            # 2 min x 5 DZD
        _event("V2", "voice", "MO", 30, "answered", intl=True),  # 1 min x 60 DZD
        _event("V3", "voice", "MT", 100, "answered"),           # incoming: free
        _event("V4", "voice", "MO", 0, "no_answer"),            # not answered: free
        _event("S1", "sms", "MO", sms="delivered"),             # 5 DZD
        _event("D1", "data", duration=60, up=48_576, down=2_000_000),  # 2 MB x 2 DZD
    ], EVENTS)
    usage = facts.fact_usage(events, *_dims(spark))
    got = usage.select("record_id", "billing_category", "units", "rated_charge_dzd", "date_key", "time_key", "tac")
    expected = spark.createDataFrame([
        ("V1", "voice", 2.0, 10.0), ("V2", "voice_international", 1.0, 60.0), ("V3", None, 0.0, 0.0),
        ("V4", None, 0.0, 0.0), ("S1", "sms", 1.0, 5.0), ("D1", "data", 2.0, 4.0),
    ], "record_id string, billing_category string, units double, rated_charge_dzd double")
    assert_frames_equal(got.drop("date_key", "time_key", "tac"), expected)
    assert {(r["date_key"], r["time_key"], r["tac"]) for r in got.collect()} == {(20260105, 630, "49015420")}


def test_invoice_deducts_bundles_and_adds_vat(spark):
    tariffs = dims.dim_tariff(spark, load_profile())
    daily = spark.createDataFrame([
        ("s1", "MOB_PRE_YOUTH", "voice", 350.0),  # 300 min included, 50 x 4 DZD
        ("s1", "MOB_PRE_YOUTH", "sms", 10.0),     # within 500
        ("s1", "MOB_PRE_YOUTH", None, 3.0),       # not billable
    ], "subscriber_key string, plan string, billing_category string, units double")
    lines = facts.invoice_lines(daily, tariffs, "2026-01").select("line", "billable", "amount_dzd")
    expected = spark.createDataFrame([
        ("monthly_fee", 1.0, 1000.0), ("voice", 50.0, 200.0), ("sms", 0.0, 0.0),
        ("vat", 1200.0, 228.0), ("total", 1.0, 1428.0),
    ], "line string, billable double, amount_dzd double")
    assert_frames_equal(lines, expected)
