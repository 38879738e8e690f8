"""The producer's stream (event-time merge of all types), pacing and labels (no Kafka needed)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from streaming.producer import Pacing
from streaming.source import TYPES, LiveOptions, LiveSource, merge_day, streamed_labels


def test_pacing_holds_the_rate_and_the_clock():
    assert Pacing(rate=1000).due(500, 0) == pytest.approx(0.5)
    # accelerated:60: an event one hour after the first leaves after a minute, unless the rate is slower
    assert Pacing(rate=1000, speedup=60).due(10, 3600) == pytest.approx(60)
    assert Pacing(rate=1, speedup=60).due(100, 60) == pytest.approx(100)
    assert Pacing(rate=None).due(10**9, 0) == 0


@pytest.mark.parametrize("clock, speedup", [("none", None), ("realtime", 1.0), ("accelerated:30", 30.0)])
def test_clock_option(clock, speedup):
    assert Pacing.parse_clock(clock) == speedup


def test_clock_option_rejects_nonsense():
    with pytest.raises(ValueError):
        Pacing.parse_clock("fast")


@pytest.fixture(scope="module")
def live() -> LiveSource:
    return LiveSource(LiveOptions(subscribers=500, days=1, start=dt.date(2025, 12, 31)))


def test_a_live_day_is_keyed_by_msisdn_json_and_in_event_time_order(live):
    batch = next(live.batches())
    assert len(batch) > 1000
    assert np.all(np.diff(batch.event_us) >= 0)
    assert set(np.unique(batch.type_index)) == set(range(len(TYPES)))
    for i in (0, len(batch) // 2, len(batch) - 1):
        record = json.loads(batch.values[i])
        assert record["record_type"] == TYPES[batch.type_index[i]]
        assert batch.keys[i] == record["served_msisdn"].encode()


def test_merge_day_interleaves_types_by_start_time():
    ts = pa.timestamp("us", tz="UTC")

    def table(rt, times):
        return pa.table({"record_type": [rt] * len(times), "served_msisdn": ["2135"] * len(times),
                         "start_time": pa.array(times, ts)})

    batch = merge_day({"voice": [table("voice", [3, 1])], "sms": [table("sms", [2])]}, dt.date(1970, 1, 1))
    assert batch.event_us.tolist() == [1, 2, 3]
    assert [TYPES[i] for i in batch.type_index] == ["voice", "sms", "voice"]


def test_defective_start_times_are_sent_with_their_neighbours():
    """A missing, far-past or far-future start time (generator defects) must neither crash the
    producer nor hold a paced stream for years: the record goes with the one before it."""
    day = dt.date(2025, 12, 28)
    at = [int(dt.datetime(2025, 12, 28, h, tzinfo=dt.timezone.utc).timestamp() * 1e6) for h in range(24)]
    far_past, far_future = at[0] - 35 * 365 * 86_400_000_000, at[0] + 20 * 365 * 86_400_000_000
    voice = pa.table({"record_type": ["voice"] * 5, "served_msisdn": ["2135"] * 5, "record_id": list("abcde"),
                      "start_time": pa.array([far_past, at[2], None, far_future, at[9]], pa.timestamp("us", tz="UTC"))})
    sms = pa.table({"record_type": ["sms"] * 2, "served_msisdn": ["2136"] * 2, "record_id": ["f", "g"],
                    "start_time": pa.array([at[1], at[5]], pa.timestamp("us", tz="UTC"))})
    batch = merge_day({"voice": [voice], "sms": [sms]}, day)
    assert batch.event_us.dtype == np.int64
    # a (far past) takes b's time, c (missing) and d (far future) take b's as well; sms interleave.
    assert [json.loads(v)["record_id"] for v in batch.values] == ["f", "a", "b", "c", "d", "g", "e"]
    assert batch.event_us.tolist() == [at[1], at[2], at[2], at[2], at[2], at[5], at[9]]
    assert json.loads(batch.values[4])["start_time"].startswith("2045-")  # the message keeps its defect


def test_only_fully_streamed_scenarios_are_labelled(live):
    labels = live.labels
    ends = sorted(labels.column("end_time").cast(pa.int64()).to_pylist())
    assert streamed_labels(labels, ends[2]).num_rows == 3
    assert streamed_labels(labels, None).num_rows == 0
