"""The producer's stream (event-time merge of all types), pacing, labels, and its delivery accounting
against a closed port (a real client; no Kafka needed)."""

from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np
import pyarrow as pa
import pytest

from streaming.producer import Pacing
from streaming.source import TYPES, Batch, LiveOptions, LiveSource, merge_day, streamed_labels, until


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


# --- delivery accounting, against a closed port (a real client; no broker will ever answer) ------


def _closed_port() -> int:
    """A local port nothing listens on: bound by the system, then released."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def closed_kafka():
    """Settings whose only broker is a closed port, with the given Kafka time limits."""
    from cdr.settings import Settings

    base = Settings()
    port = _closed_port()

    def settings(**limits):
        return base.model_copy(update={"kafka": base.kafka.model_copy(update={"broker_ports": [port], **limits})})

    return settings


def _counter_total(metrics, name: str) -> float:
    return sum(s.value for m in metrics.registry.collect() for s in m.samples if s.name == name)


def test_no_broker_answering_fails_before_sending_within_the_connect_timeout(closed_kafka):
    from cdr.errors import ExitCode, ServiceUnavailable
    from streaming.producer import make_producer

    settings = closed_kafka(connect_timeout_s=1)
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable) as err:
        make_producer(settings, topics=["cdr.voice"])
    assert time.monotonic() - began < 1 + 5
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert settings.kafka.bootstrap in str(err.value) and "within 1 s" in str(err.value)
    assert "Connection refused" in str(err.value) and "CDR_KAFKA__BROKER_PORTS" in err.value.hint


def test_records_that_time_out_are_errors_in_the_progress_the_metrics_and_the_exit(closed_kafka, live):
    """The metadata check bypassed, records are handed over to a client that never reaches a
    broker: each fails after the delivery timeout, and nothing counts as acknowledged."""
    from cdr.errors import DataLoss, ExitCode
    from streaming.producer import Metrics, Pacing, make_producer, require_delivered, send

    settings = closed_kafka(delivery_timeout_s=0.3, flush_timeout_s=10)
    metrics = Metrics(None)
    began = time.monotonic()
    prog = send(settings, live.batches(), Pacing(rate=None), count=700, metrics=metrics,
                producer=make_producer(settings, check=False))
    assert time.monotonic() - began < 10  # the delivery timeout ended them, not the flush timeout
    assert (prog.sent, prog.delivered, prog.failed, prog.undelivered, prog.errors) == (700, 0, 700, 0, 700)
    assert prog.acknowledged_rate == 0
    assert _counter_total(metrics, "cdr_producer_errors_total") == 700
    assert _counter_total(metrics, "cdr_producer_records_sent_total") == 0
    with pytest.raises(DataLoss) as err:
        require_delivered(prog)
    assert err.value.exit_code == ExitCode.DATA_LOSS
    assert "700 of 700 records were not acknowledged" in str(err.value)
    assert "Message timed out" in str(err.value) and "Connection refused" in str(err.value)


def test_records_still_queued_when_the_final_flush_gives_up_are_counted_as_not_delivered(closed_kafka, live):
    from cdr.errors import DataLoss
    from streaming.producer import Metrics, Pacing, make_producer, require_delivered, send

    settings = closed_kafka(delivery_timeout_s=300, flush_timeout_s=0.5)
    metrics = Metrics(None)
    producer = make_producer(settings, check=False)
    began = time.monotonic()
    prog = send(settings, live.batches(), Pacing(rate=None), count=900, metrics=metrics, producer=producer)
    assert time.monotonic() - began < 5  # bounded by the flush timeout, not the 300 s delivery timeout
    assert (prog.sent, prog.delivered, prog.failed, prog.undelivered) == (900, 0, 0, 900)
    assert len(producer) == 0  # purged: nothing left to send later or to complain about at exit
    assert _counter_total(metrics, "cdr_producer_errors_total") == 900
    assert "900 records still unacknowledged 0.5 s after the last" in prog.last_error
    with pytest.raises(DataLoss, match="900 of 900 records"):
        require_delivered(prog)


def test_sending_stops_at_the_first_record_that_fails(closed_kafka, live):
    """Brokers gone mid-run: the first failed record ends the stream (what follows would fail too)."""
    from streaming.producer import Pacing, make_producer, send

    settings = closed_kafka(delivery_timeout_s=0.3, flush_timeout_s=10)
    began = time.monotonic()
    prog = send(settings, live.batches(), Pacing(rate=2000), duration_s=60, producer=make_producer(settings, check=False))
    assert time.monotonic() - began < 15
    assert 0 < prog.sent < 2000 * 15 and prog.errors == prog.sent and prog.delivered == 0


def test_subscriber_profiles_are_accounted_the_same_way(closed_kafka, live):
    from cdr.errors import DataLoss
    from streaming.producer import make_producer, require_delivered, send_subscribers

    settings = closed_kafka(delivery_timeout_s=0.3, flush_timeout_s=10)
    prog = send_subscribers(settings, live.subscribers, producer=make_producer(settings, check=False))
    assert prog.sent == live.subscribers.num_rows and prog.errors == prog.sent and prog.delivered == 0
    with pytest.raises(DataLoss, match=f"{prog.sent:,} of {prog.sent:,} subscriber profiles"):
        require_delivered(prog, "subscriber profiles")


def test_a_run_kafka_acknowledged_in_full_passes():
    from streaming.producer import Progress, require_delivered

    require_delivered(Progress(sent=5, delivered=5))


@pytest.mark.parametrize("clock", ["accelerated:x", "accelerated:0", "accelerated:-2", "accelerated:inf"])
def test_clock_option_rejects_a_bad_acceleration(clock):
    with pytest.raises(ValueError, match="accelerated:X"):
        Pacing.parse_clock(clock)


# --- topic names from settings -------------------------------------------------------------------


@pytest.mark.parametrize("section, value, setting", [
    ("prefix", "cdr voice.", "topics.prefix"),
    ("prefix", "cdr.'; DROP TABLE alerts; --", "topics.prefix"),
    ("dead_letter", "", "topics.dead_letter"),
    ("dead_letter", "..", "topics.dead_letter"),
    ("subscribers", "s" * 250, "topics.subscribers"),
    ("subscribers", "cdr.voice", "topics.subscribers"),  # the voice topic's name
])
def test_topic_names_kafka_would_refuse_name_their_setting(section, value, setting):
    from cdr.errors import BadInput
    from cdr.settings import Settings
    from streaming.topics import check_topic_names, declared_topics

    base = Settings()
    check_topic_names(base)
    settings = base.model_copy(update={"topics": base.topics.model_copy(update={section: value})})
    with pytest.raises(BadInput, match=setting.replace(".", r"\.")):
        declared_topics(settings)


def test_until_stops_before_the_event_time_given():
    def batch(times):
        n = len(times)
        return Batch(np.zeros(n, np.int8), [b"k"] * n, [f"v{t}".encode() for t in times], np.array(times, np.int64))

    kept = list(until(iter([batch([1, 2, 3]), batch([4, 5, 6]), batch([7, 8])]), 5))
    assert [list(b.event_us) for b in kept] == [[1, 2, 3], [4]]
    assert kept[1].values == [b"v4"]
    assert list(until(iter([batch([5, 6])]), 5)) == []


@pytest.fixture
def stack_home(tmp_path):
    """Settings whose stack home is a fresh folder and whose metrics port is free."""
    from cdr.settings import Settings

    base = Settings()
    return base.model_copy(update={"stack": base.stack.model_copy(update={"home": tmp_path}),
                                   "producer": base.producer.model_copy(update={"metrics_port": _closed_port()})})


def _target_groups(settings) -> list[dict]:
    from stack.services.monitoring import PRODUCER_JOB, targets_dir

    return json.loads((targets_dir(settings) / f"{PRODUCER_JOB}.json").read_text())


def test_the_producer_is_a_prometheus_target_only_while_it_serves_metrics(stack_home):
    """Registered in the local stack's file_sd folder while the endpoint serves, with the label
    ServiceDown watches; unregistered (``[]``) when it ends, by an error too. No temporary file left."""
    import httpx

    from stack.services.monitoring import producer_target, targets_dir
    from streaming.producer import Metrics

    folder = targets_dir(stack_home)
    folder.mkdir(parents=True)
    port = stack_home.producer.metrics_port
    with Metrics(port, stack_home) as m:
        assert m.target_file == folder / "cdr-producer.json"
        assert _target_groups(stack_home) == [{"targets": [producer_target(stack_home)],
                                                "labels": {"availability": "always-on"}}]
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
    assert _target_groups(stack_home) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")

    with pytest.raises(KeyboardInterrupt), Metrics(port, stack_home):  # Ctrl-C: a BaseException
        assert _target_groups(stack_home) != []
        raise KeyboardInterrupt
    assert _target_groups(stack_home) == []
    assert sorted(p.name for p in folder.iterdir()) == ["cdr-producer.json"]


def test_the_producer_registers_nothing_without_a_local_stack_or_without_metrics(stack_home):
    from stack.services.monitoring import targets_dir
    from streaming.producer import Metrics

    with Metrics(stack_home.producer.metrics_port, stack_home) as m:  # no stack prepared in this home
        assert m.target_file is None
    assert not targets_dir(stack_home).exists()
    targets_dir(stack_home).mkdir(parents=True)
    with Metrics(None, stack_home) as m:  # --no-metrics: nothing to scrape
        assert m.target_file is None
    assert list(targets_dir(stack_home).iterdir()) == []
