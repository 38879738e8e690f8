"""Detectors on tiny inline usage: each fires on its scenario's shape and not on normal traffic."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from batch import anomalies, features
from batch.testing import assert_frames_equal, spark  # noqa: F401  (spark: session-scoped fixture)

pytestmark = pytest.mark.spark
UTC = dt.timezone.utc
DAY = dt.datetime(2026, 1, 5, tzinfo=UTC)
USAGE = ("record_id string, start_time timestamp, service string, subscriber_key string, imsi_key string, "
         "imei_key string, cell_id string, access_technology string, roaming boolean, other_party_key string, "
         "other_party_international boolean, direction string, call_result string, duration_s int, "
         "bytes_total long")
CELLS = ("cell_id string, latitude double, longitude double, nearest_site_km double")


def _row(i, minute, service="voice", sub="s1", cell="c1", other=None, intl=False, direction="MO",
         result="answered", imsi=None, imei=None, nbytes=None, tech="4G"):
    return (f"R{i}", DAY + dt.timedelta(minutes=minute), service, sub, imsi or f"i-{sub}", imei or f"e-{sub}", cell,
            tech, False, other, intl, direction, result, 10, nbytes)


def _cells(spark):
    return spark.createDataFrame([("c1", 36.75, 3.06, 5.0), ("c2", 35.7, -0.63, 5.0), ("c3", 22.8, 5.5, 5.0)],
                                 CELLS)


def test_sim_box_fires_on_many_distinct_outgoing_calls_and_not_on_a_busy_normal_line(spark):
    rows = [_row(i, 600 + i, other=f"o{i}") for i in range(50)]                       # s1: 50 calls in an hour
    rows += [_row(100 + i, 600 + 3 * i, sub="s2", other=f"p{i % 5}") for i in range(20)]  # s2: 20 calls
    usage = spark.createDataFrame(rows, USAGE)
    found = anomalies.sim_box(usage).select("entity_id", "window_start", "window_end", "score")
    expected = spark.createDataFrame([("s1", DAY + dt.timedelta(hours=10), DAY + dt.timedelta(hours=11), 50.0)],
                                     "entity_id string, window_start timestamp, window_end timestamp, score double")
    assert_frames_equal(found, expected)


def test_wangiri_fires_on_one_foreign_number_ringing_many_subscribers(spark):
    rows = [_row(i, 720 + i // 2, sub=f"v{i}", other="w1", intl=True, direction="MT", result="no_answer")
            for i in range(60)]
    rows += [_row(100 + i, 720 + i, sub=f"v{i}", other="n1", intl=False, direction="MT", result="no_answer")
             for i in range(40)]  # a national number: not wangiri
    found = anomalies.wangiri(spark.createDataFrame(rows, USAGE))
    assert [(r["entity_id"], r["entity_type"], r["score"]) for r in found.collect()] == [("w1", "msisdn", 60.0)]


def test_impossible_travel_and_imei_cloning(spark):
    cells = _cells(spark)
    # Alger - Tamanrasset (about 1,550 km) every 5 minutes, and the same trip every 5 hours.
    hops = [_row(i, 600 + 5 * i, sub="t1", cell="c1" if i % 2 == 0 else "c3") for i in range(6)]
    slow = [_row(10 + i, 600 + 300 * i, sub="t2", cell="c1" if i % 2 == 0 else "c3") for i in range(3)]
    clone = [_row(20 + i, 600 + 10 * i, sub="a" if i % 2 else "b", imsi="ia" if i % 2 else "ib", imei="E1",
                  cell="c1" if i % 2 else "c2") for i in range(6)]  # Alger and Oran, about 350 km
    # A SIM moved into another line's handset in the same town: one IMEI, two IMSIs, no distance.
    swap = [_row(30 + i, 600 + 10 * i, sub="d" if i % 2 else "e", imsi="id" if i % 2 else "ie", imei="E2",
                 cell="c1") for i in range(4)]
    usage = spark.createDataFrame(hops + slow + clone + swap, USAGE)
    assert [r["entity_id"] for r in anomalies.impossible_travel(usage, cells).collect()] == ["t1"]
    cloned = anomalies.imei_cloning(usage, cells).collect()
    assert [(r["entity_id"], r["entity_type"]) for r in cloned] == [("E1", "imei")]
    assert cloned[0]["score"] > 300


def test_data_spike_needs_many_huge_mobile_sessions(spark):
    spike = [_row(i, 600 + 10 * i, service="data", nbytes=4_000_000_000) for i in range(8)]
    fixed = [_row(10 + i, 600 + 10 * i, service="data", sub="f1", nbytes=4_000_000_000, tech="FTTH")
             for i in range(8)]
    found = anomalies.data_spike(spark.createDataFrame(spike + fixed, USAGE))
    assert [(r["entity_id"], r["score"]) for r in found.collect()] == [("s1", 32.0)]


def test_cell_outage_and_traffic_surge_against_their_baselines(spark):
    rows, i = [], 0
    for hour in range(8, 20):
        for cell in ("c1", "c2", "c3"):
            for k in range(10):
                broken = cell == "c2" and hour == 12 and k < 8
                rows.append(_row(i, hour * 60 + k, sub=f"u{k}", cell=cell, result="failed" if broken else "answered"))
                i += 1
    rows += [_row(10_000 + k, 15 * 60 + k % 60, service="sms", sub=f"x{k}", cell="c3") for k in range(400)]
    # A quiet cell's bad hour by chance: 4 of 7 calls failed or dropped while the other cells fail
    # 10 % of theirs (1 in 10 dropped every hour). Its share is high, its counts are not evidence.
    for hour in range(8, 20):
        for cell in ("c1", "c3"):
            rows.append(_row(i, hour * 60 + 30, sub="d", cell=cell, result="dropped"))
            i += 1
    rows += [_row(20_000 + k, 14 * 60 + k, sub=f"q{k}", cell="c4", result="dropped" if k < 4 else "answered")
             for k in range(7)]
    usage = spark.createDataFrame(rows, USAGE).withColumn("date", F.to_date("start_time"))
    cell_hours = features.cell_hourly(usage)
    outage = anomalies.cell_outage(cell_hours).select("entity_id", "window_start")
    surge = anomalies.traffic_surge(cell_hours).select("entity_id", "window_start")
    schema = "entity_id string, window_start timestamp"
    assert_frames_equal(outage, spark.createDataFrame([("c2", DAY + dt.timedelta(hours=12))], schema))
    assert_frames_equal(surge, spark.createDataFrame([("c3", DAY + dt.timedelta(hours=15))], schema))
