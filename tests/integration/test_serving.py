"""The serving layer end to end on the local stack: the session's batched days (``batch_layer``),
the second of them streamed through the detection job, merged; then the streamed day published
by the batch while a reader queries; the layers reconciled; incidents merged.

The batch publishes both its days when it runs; this module takes the second day back out of the
batch views first (`cdr serving unpublish`), as if the batch had not reached it yet, and streams
it from the dataset's files on topics of its own. Its days are the batch fixture's (2026-01-05/06),
which no other module streams. A few valid records of the day are held back and sent once the
stream has closed the day: its windows drop them as late, and the layers must account for them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections import Counter

import pytest

from cdr.contract import RECORD_TYPES
from cdr.pseudonym import DEVELOPMENT_KEY, pseudonymise
from tests.integration.conftest import (cdr, closing_hour, delete_minutes, own_topics, wait_day_closed,
                                        wait_late_counted)

pytestmark = [pytest.mark.stack]


def _generated(data, day: dt.date) -> dict[str, tuple[int, int]]:
    """Per record type, the dataset's records of ``day`` and its labelled defects (duplicates apart)."""
    import json

    import pyarrow.dataset as ds

    manifest = json.loads((data / "manifest.json").read_text())
    defects = ds.dataset(data / "labels" / "defects.parquet").to_table().to_pylist()
    stamp = day.strftime("%Y%m%d")
    labelled = Counter((d["record_type"], d["defect"] == "duplicate") for d in defects if stamp in d["record_id"])
    return {rt: (manifest["rows"][rt][str(day)], labelled[rt, False], labelled[rt, True]) for rt in RECORD_TYPES}


def _records_per_day(conn, first: dt.date, last: dt.date) -> dict[tuple[dt.date, str], tuple[str, int]]:
    """(day, service) -> (source, records) of the merged service-hour view, in one statement."""
    rows = conn.execute(
        "SELECT hour_start::DATE, service, string_agg(DISTINCT source, ','), sum(records)::BIGINT"
        " FROM serving.service_hour WHERE hour_start >= %s AND hour_start < %s GROUP BY 1, 2",
        (first, last + dt.timedelta(days=1))).fetchall()
    return {(day, service): (source, records) for day, service, source, records in rows}


def _assert_rollups_sum_the_cell_hours(conn, first: dt.date, last: dt.date) -> None:
    """serving.cell_day and serving.network_hour hold exactly the sums of serving.cell_hour at their
    grain, with the same source, for every day in [first, last]."""
    lo, hi = first, last + dt.timedelta(days=1)
    measures = "call_attempts, answered, dropped_or_failed, sms, data_bytes"
    summed = ", ".join(f"sum({m})::BIGINT" for m in measures.split(", "))
    cell_days = conn.execute(f"SELECT day, cell_id, {measures}, source FROM serving.cell_day"
                             " WHERE day >= %s AND day <= %s", (first, last)).fetchall()
    assert sorted(cell_days) == sorted(conn.execute(
        f"SELECT hour_start::DATE, cell_id, {summed}, min(source) FROM serving.cell_hour"
        " WHERE hour_start >= %s AND hour_start < %s GROUP BY 1, 2", (lo, hi)).fetchall())
    network = conn.execute(f"SELECT hour_start, {measures}, source FROM serving.network_hour"
                           " WHERE hour_start >= %s AND hour_start < %s ORDER BY 1", (lo, hi)).fetchall()
    assert network == conn.execute(
        f"SELECT hour_start, {summed}, min(source) FROM serving.cell_hour"
        " WHERE hour_start >= %s AND hour_start < %s GROUP BY 1 ORDER BY 1", (lo, hi)).fetchall()
    assert {d for d, *_ in cell_days} == {first, last} and len(network) >= 48
    assert conn.execute("SELECT hour_start FROM serving.latest_hour").fetchone() == conn.execute(
        "SELECT max(hour_start) FROM serving.cell_hour").fetchone()


def _hold_back(batch, data, day: dt.date, per_type: int = 20):
    """``batch`` split into the records to send on time and ``per_type`` valid SMS and data records
    of the day's first hour, outside every scenario's windows (no defect), to send after the day
    has closed."""
    import json

    import numpy as np
    import pyarrow.dataset as ds

    from streaming.source import TYPES, Batch

    defects = set(ds.dataset(data / "labels" / "defects.parquet").to_table().column("record_id").to_pylist())
    scenarios = [s for s in ds.dataset(data / "labels" / "scenarios.parquet").to_table().to_pylist()
                 if s["start_time"].date() == day]
    first_hour_end = int(dt.datetime.combine(day, dt.time(1), dt.timezone.utc).timestamp() * 1_000_000)
    margin = dt.timedelta(hours=2)  # the longest detection window

    def in_a_scenario(us: int) -> bool:
        t = dt.datetime.fromtimestamp(us / 1_000_000, dt.timezone.utc)
        return any(s["start_time"] - margin <= t <= s["end_time"] + margin for s in scenarios)

    held, wanted = [], Counter({"sms": per_type, "data": per_type})
    for i in np.flatnonzero(batch.event_us < first_hour_end):
        if in_a_scenario(int(batch.event_us[i])):
            continue
        record = json.loads(batch.values[i])
        rt = TYPES[batch.type_index[i]]
        if wanted[rt] and record["record_id"] not in defects and record["start_time"].startswith(str(day)):
            held.append(i)
            wanted[rt] -= 1
    assert not +wanted, f"the first hour of {day} has too few valid SMS and data records"

    def take(index) -> Batch:
        return Batch(batch.type_index[index], [batch.keys[i] for i in index], [batch.values[i] for i in index],
                     batch.event_us[index])

    on_time = np.setdiff1d(np.arange(len(batch)), held)
    return take(on_time), take(np.array(held)), Counter(TYPES[batch.type_index[i]] for i in held)


@pytest.fixture(scope="module")
def layers(batch_layer, local_stack, tmp_path_factory):
    """Day 1 published by the batch, day 2 streamed (and closed by a first hour of day 3), then a
    few of day 2's records sent late."""
    import pyarrow.dataset as ds

    from streaming import jobs
    from streaming.producer import Pacing, send
    from streaming.source import DatasetSource

    first, streamed = batch_layer.dates
    cdr("serving", "unpublish", "--date", str(streamed))
    with own_topics() as settings:
        delete_minutes(settings, streamed, 2)  # a previous run's rows of these days
        try:
            cells = jobs.write_cells(ds.dataset(batch_layer.data / "cells").to_table(),
                                     tmp_path_factory.mktemp("serving") / "cells.parquet", 6)
            [replay] = list(DatasetSource(batch_layer.data).batches())[1:]  # the streamed day
            replay, late, held = _hold_back(replay, batch_layer.data, streamed)
            sent = send(settings, itertools.chain([replay], closing_hour(streamed)), Pacing(rate=None))
            assert sent.errors == 0
            # Started once the topics hold the whole stream: a job that waits on empty partitions
            # declares them idle, and a burst then arriving on some partitions first moves the
            # watermark past the others' records, which its windows drop as late.
            jobs.stop(settings, "detection", savepoint=False)
            jobs.start(settings, "detection", DEVELOPMENT_KEY, cells, fresh=True)
            wait_day_closed(settings, streamed)
            late_sent_at = time.time()
            assert send(settings, iter([late]), Pacing(rate=None)).errors == 0
            wait_late_counted(settings, streamed, sum(held.values()))
            yield {"first": first, "streamed": streamed, "settings": settings, "batch": batch_layer, "held": held,
                   "late_sent_at": late_sent_at}
        finally:
            jobs.stop(settings, "detection", savepoint=False)  # before its rows go: it writes no more
            delete_minutes(settings, streamed, 2)


def test_the_records_dropped_as_late_raise_the_late_records_alert(layers):
    """Flink's own count of the windows' drops reaches Prometheus, StreamDroppingLateRecords fires
    for the detection job (monitoring/prometheus/rules/streaming.yml) and reaches Alertmanager. First
    in the module: the alert resolves 5 minutes after the drops."""
    import requests

    settings = layers["settings"]
    query = 'ALERTS{alertname="StreamDroppingLateRecords", alertstate="firing", job_name="cdr_detection"}'
    deadline = time.monotonic() + 120  # a scrape (10 s), a rule evaluation (10 s), with margin
    while True:
        fired = requests.get(f"http://127.0.0.1:{settings.prometheus.port}/api/v1/query_range", timeout=30, params={
            "query": query, "start": layers["late_sent_at"], "end": time.time(), "step": "5"}).json()
        assert fired["status"] == "success", fired
        received = requests.get(f"http://127.0.0.1:{settings.prometheus.alertmanager_port}/api/v2/alerts", timeout=30,
                                params={"filter": 'alertname="StreamDroppingLateRecords"'}).json()
        if (fired["data"]["result"] and received) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert fired["data"]["result"], "StreamDroppingLateRecords did not fire after the late records"
    assert [a["labels"]["job_name"] for a in received] == ["cdr_detection"], received


def test_the_merged_views_read_the_published_day_from_the_batch_and_the_next_from_the_stream(layers):
    """Generated totals exactly: the batch day without its quarantined records and duplicates,
    the streamed day without its invalid records and the records sent late (the stream keeps
    duplicates: the batch counts them), which the stream counted as late."""
    from serving import store

    first, streamed = layers["first"], layers["streamed"]
    with store.connect(layers["settings"]) as conn:
        merged = _records_per_day(conn, first, streamed)
        _assert_rollups_sum_the_cell_hours(conn, first, streamed)
    for day, source in ((first, "batch"), (streamed, "speed")):
        for rt, (records, invalid, duplicates) in _generated(layers["batch"].data, day).items():
            kept = records - invalid - (duplicates if source == "batch" else layers["held"][rt] if day == streamed else 0)
            assert merged[day, rt] == (source, kept), (day, rt, records, invalid, duplicates)
    assert {day for day, _ in merged} == {first, streamed}
    with store.connect(layers["settings"]) as conn:
        late = dict(conn.execute("SELECT record_type, sum(records) FROM late_records WHERE day = %s GROUP BY 1",
                                 (streamed,)).fetchall())
    assert late == dict(layers["held"])


def test_publishing_the_streamed_day_switches_it_to_the_batch_without_a_gap_or_a_double_count(layers):
    """A reader queries the merged view in a loop while the batch publishes the streamed day:
    every answer reads the day from exactly one layer, with that layer's totals."""
    from serving import store

    first, streamed = layers["first"], layers["streamed"]
    generated = _generated(layers["batch"].data, streamed)
    speed = {rt: ("speed", n - bad - layers["held"][rt]) for rt, (n, bad, _) in generated.items()}
    batch = {rt: ("batch", n - bad - dup) for rt, (n, bad, dup) in generated.items()}
    seen, stop = Counter(), threading.Event()

    def read() -> None:
        with store.connect(layers["settings"]) as conn:
            while not stop.is_set():
                day = {rt: v for (d, rt), v in _records_per_day(conn, streamed, streamed).items()}
                seen["speed" if day == speed else "batch" if day == batch else repr(day)] += 1
                conn.rollback()  # a new snapshot for each query

    reader = threading.Thread(target=read)
    reader.start()
    try:
        cdr("serving", "publish", "--date", str(streamed), *layers["batch"].cdr_args())
        time.sleep(1)
    finally:
        stop.set()
        reader.join()
    assert set(seen) == {"speed", "batch"}, seen  # never a mix, never anything else
    with store.connect(layers["settings"]) as conn:
        assert {rt: v for (d, rt), v in _records_per_day(conn, first, streamed).items() if d == streamed} == batch
        assert store.published_days(conn).keys() >= {first, streamed}
        _assert_rollups_sum_the_cell_hours(conn, first, streamed)  # the rollups switched with the day


def _publish(layers) -> None:
    """The streamed day published (the switch test does it; alone, this test does)."""
    from serving import store

    with store.connect(layers["settings"]) as conn:
        if layers["streamed"] not in store.published_days(conn):
            cdr("serving", "publish", "--date", str(layers["streamed"]), *layers["batch"].cdr_args())


def test_the_reconciliation_of_a_streamed_and_batched_day_balances_and_catches_a_difference(layers):
    from serving import store

    _publish(layers)
    day = str(layers["streamed"])
    report = cdr("serving", "reconcile", "--date", day)
    assert "unexplained difference" not in report and report.count("balanced") >= len(RECORD_TYPES), report
    with store.connect(layers["settings"]) as conn:
        rows = dict(conn.execute("SELECT record_type, verdict FROM serving.layer_reconciliation WHERE day = %s",
                                 (layers["streamed"],)).fetchall())
    assert rows == {rt: "balanced" for rt in RECORD_TYPES}
    with store.connect(layers["settings"]) as conn:  # balanced because the late records are counted
        late = dict(conn.execute("SELECT record_type, late_dropped FROM serving.layer_reconciliation WHERE day = %s"
                                 " AND late_dropped > 0", (layers["streamed"],)).fetchall())
    assert late == dict(layers["held"])

    # Records the batch saw and the stream did not: a minute of the stream's counts lost.
    with store.connect(layers["settings"]) as conn:
        lost = conn.execute("DELETE FROM kpi_service_minute WHERE service = 'voice' AND minute_start = ("
                            " SELECT min(minute_start) FROM kpi_service_minute WHERE service = 'voice'"
                            " AND minute_start >= %s) RETURNING minute_start, records, answered, dropped_or_failed,"
                            " data_bytes", (layers["streamed"],)).fetchone()
        conn.commit()
    try:
        import subprocess
        import sys
        from pathlib import Path

        done = subprocess.run([str(Path(sys.executable).parent / "cdr"), "serving", "reconcile", "--date", day],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 4, done
        assert "disagree" in done.stderr and "voice" in done.stderr
        assert f"{-lost[1]:,}" in done.stdout and "unexplained difference" in done.stdout
    finally:
        with store.connect(layers["settings"]) as conn:
            conn.execute("INSERT INTO kpi_service_minute VALUES ('voice', %s, %s, %s, %s, %s)", lost)
            conn.commit()


def test_every_labelled_scenario_of_the_streamed_day_is_one_incident_confirmed_by_both_layers(layers):
    import pyarrow.dataset as ds

    from serving import store

    _publish(layers)
    day = layers["streamed"]
    labels = [s for s in ds.dataset(layers["batch"].data / "labels" / "scenarios.parquet").to_table().to_pylist()
              if s["start_time"].date() == day]
    assert len({s["scenario"] for s in labels}) >= 5, labels
    with store.connect(layers["settings"]) as conn:
        incidents = conn.execute("SELECT scenario, entity_id, status, stream_alerts FROM serving.incidents"
                                 " WHERE day = %s", (day,)).fetchall()
    by_entity = Counter((scenario, entity) for scenario, entity, _, _ in incidents)
    for label in labels:
        entity = label["entity_id"] if label["entity_type"] == "cell" else pseudonymise(label["entity_id"],
                                                                                       DEVELOPMENT_KEY)
        key = (label["scenario"], entity)
        assert by_entity[key] == 1, (label, [i for i in incidents if i[0] == label["scenario"]])
        [status] = [i[2] for i in incidents if (i[0], i[1]) == key]
        assert status == "confirmed", (label, status)
