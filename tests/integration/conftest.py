"""Fixtures and helpers shared by the local stack's integration modules.

``batch_layer``: one labelled dataset through `cdr batch run` (a separate Spark application, as in
production) into its own root folder and database prefix, so the shared ``cdr_dw`` is not touched.
Built once per session for every module that needs a batched warehouse (the batch chain's tests,
the serving layer's), whichever runs first; its databases and files are removed at the end. Its
run pushes the batch's metrics to the Pushgateway afresh (the group job="cdr-batch" is deleted
first: its latest day never goes back otherwise), so Prometheus then holds this run's day and counts.

``own_topics``: settings pointing at topics of the calling module only (a per-run prefix), so that a
module neither reads nor disturbs a demo's stream; ``closing_hour`` and ``wait_day_closed`` end a
streamed day deterministically instead of waiting for the source's idle timeout.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BATCH_START = dt.date(2026, 1, 5)
BATCH_DAYS = 2
BATCH_SUBSCRIBERS = 3000
BATCH_PREFIX = "it_"


def cdr(*args: str, timeout: int = 900) -> str:
    """`cdr ARGS` as a separate process with the development key; fails the test on a non-zero exit."""
    env = dict(os.environ, CDR_DEV_PSEUDONYM_KEY="1")
    done = subprocess.run([str(Path(sys.executable).parent / "cdr"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"cdr {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@dataclass(frozen=True)
class BatchLayer:
    data: Path          # the generated dataset (labels included)
    root: str           # the zones' root URI on HDFS
    prefix: str         # of the Hive databases
    log: str            # what `cdr batch run` printed
    start: dt.date = BATCH_START
    days: int = BATCH_DAYS

    @property
    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    def cdr_args(self) -> list[str]:
        return ["--root", self.root, "--db-prefix", self.prefix]


@pytest.fixture(scope="session")
def batch_layer(local_stack, tmp_path_factory):
    from generator.dataset import GenerateOptions, generate_dataset
    from tests.integration.thrift import query

    data = generate_dataset(GenerateOptions(out=tmp_path_factory.mktemp("batch-it") / "ds", subscribers=BATCH_SUBSCRIBERS,
                                            days=BATCH_DAYS, start=BATCH_START, seed=42)).out
    root = f"{local_stack.settings.hdfs.uri}/cdr-it/batch-{uuid.uuid4().hex[:8]}"
    from prometheus_client import delete_from_gateway

    from cdr.pushgateway import BATCH_JOB

    delete_from_gateway(local_stack.settings.prometheus.pushgateway_url, BATCH_JOB, timeout=10)
    log = cdr("batch", "run", "--input", str(data), "--dev-key", "--root", root, "--db-prefix", BATCH_PREFIX)
    layer = BatchLayer(data, root, BATCH_PREFIX, log)
    yield layer
    from serving import store

    with store.connect(local_stack.settings) as conn:  # the run published its days: take them back out
        for day in layer.dates:
            store.unpublish(conn, day)
    for db in ("cdr_raw", "cdr_clean", "cdr_ops", "cdr_dw"):
        query(local_stack, f"DROP DATABASE IF EXISTS {BATCH_PREFIX}{db} CASCADE")
    hdfs = next(s for s in local_stack.services if s.name == "hdfs")
    hdfs._webhdfs("DELETE", root.removeprefix(local_stack.settings.hdfs.uri), "DELETE", recursive="true")


@contextmanager
def own_topics(prefix: str = "it", create: bool = True, cancels: tuple[str, ...] = ("detection",),
               **overrides: str):
    """Settings whose topics carry a per-run prefix (``overrides``: more CDR_* variables, where
    ``{run}`` stands for the run's id), the topics created unless ``create`` is false. Afterwards the
    stream jobs in ``cancels`` are cancelled, the jobs' resume state is put back as it was (a test's
    savepoints must not become where `cdr stream start` resumes from), the topics are deleted and
    the environment restored."""
    from cdr.settings import get_settings
    from streaming import jobs
    from streaming.topics import admin_client, apply_topics, declared_topics

    run = uuid.uuid4().hex[:8]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CDR_TOPICS__PREFIX", f"{prefix}-{run}.cdr.")
        env.setenv("CDR_TOPICS__DEAD_LETTER", f"{prefix}-{run}.cdr.dead-letter")
        env.setenv("CDR_TOPICS__SUBSCRIBERS", f"{prefix}-{run}.cdr.subscribers")
        for name, value in overrides.items():
            env.setenv(name, value.format(run=run))
        get_settings.cache_clear()
        settings = get_settings()
        state_file = settings.stack.home_dir / "flink" / "stream-jobs.json"
        saved_state = state_file.read_text() if state_file.exists() else None
        try:
            if create:
                apply_topics(settings)
            yield settings
        finally:
            try:
                for job in cancels:
                    jobs.stop(settings, job, savepoint=False)
            finally:
                if saved_state is None:
                    state_file.unlink(missing_ok=True)
                else:
                    state_file.write_text(saved_state)
                admin = admin_client(settings)  # kept referenced until the deletions complete
                for done in admin.delete_topics([t.name for t in declared_topics(settings)]).values():
                    done.result()
    get_settings.cache_clear()


def prometheus_values(settings, query: str, want: dict[str, float], by: str = "",
                      timeout_s: float = 30) -> dict[str, float]:
    """The values of the instant ``query`` in the local stack's Prometheus, keyed by the label ``by``
    ('' for one series), polled until they are ``want`` or ``timeout_s`` has passed (a push reaches
    Prometheus at its next scrape of the Pushgateway, every 10 s); returns what it saw last."""
    import requests

    deadline = time.monotonic() + timeout_s
    while True:
        body = requests.get(f"http://127.0.0.1:{settings.prometheus.port}/api/v1/query", params={"query": query},
                            timeout=10).json()
        assert body["status"] == "success", body
        seen = {r["metric"].get(by, "") if by else "": float(r["value"][1]) for r in body["data"]["result"]}
        if seen == want or time.monotonic() > deadline:
            return seen
        time.sleep(2)


def _midnight_after(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)


def closing_hour(day: dt.date) -> Iterator:
    """The first hour of the day after ``day`` (200 subscribers, no scenario). Sent after the day's
    records, it moves the detection job's event clock past the day's end, so every window of the day
    closes (the windows are tumbling and aligned to the clock, none longer than 2 h); a stream that
    just ends leaves its last windows open until its partitions turn idle."""
    from streaming.source import LiveOptions, LiveSource, until

    after = LiveSource(LiveOptions(subscribers=200, days=1, start=day + dt.timedelta(days=1), scenarios=()))
    return until(after.batches(), int((_midnight_after(day) + dt.timedelta(hours=1)).timestamp() * 1_000_000))


def delete_minutes(settings, first: dt.date, days: int) -> None:
    """The live KPI rows of ``days`` days from ``first`` (the speed layer's serving rows follow
    through the database's triggers): a test's streamed days leave nothing behind, and an earlier
    run's rows cannot pass for this run's."""
    from serving import store

    with store.connect(settings, autocommit=True) as conn:
        for table in ("kpi_cell_minute", "kpi_service_minute"):
            conn.execute(f"DELETE FROM {table} WHERE minute_start >= %s AND minute_start < %s",
                         (first, first + dt.timedelta(days=days)))
        conn.execute("DELETE FROM late_records WHERE day >= %s AND day < %s", (first, first + dt.timedelta(days=days)))


def wait_late_counted(settings, day: dt.date, records: int, timeout_s: float = 90) -> None:
    """Until the detection job has counted ``records`` late records of ``day`` (it counts them every
    10 s of processing time), and no more a while later."""
    from serving import store

    deadline = time.monotonic() + timeout_s
    with store.connect(settings, autocommit=True) as conn:
        def counted() -> int:
            return conn.execute("SELECT coalesce(sum(records), 0) FROM late_records WHERE day = %s", (day,)).fetchone()[0]

        while counted() < records:
            assert time.monotonic() < deadline, f"{counted()} late records of {day} counted, not {records}"
            time.sleep(2)
        time.sleep(12)  # one more counting window: nothing else is late
        assert counted() == records


def wait_day_closed(settings, day: dt.date, timeout_s: float = 420) -> None:
    """Until the detection job has written a KPI minute of the day after ``day`` (its event clock
    passed the day's end: every window of ``day`` has fired), then for its sinks' last flush. The
    caller deletes the next day's minutes first (``delete_minutes``)."""
    from serving import store

    end = _midnight_after(day).replace(tzinfo=None)
    deadline = time.monotonic() + timeout_s
    with store.connect(settings, autocommit=True) as conn:
        while not conn.execute("SELECT 1 FROM kpi_service_minute WHERE minute_start >= %s LIMIT 1", (end,)).fetchone():
            assert time.monotonic() < deadline, f"the detection job did not close {day} in {timeout_s:.0f} s"
            time.sleep(2)
    # The windows fire together; the alerts pass the Python rules and the JDBC sinks flush every
    # 500 ms (streaming/flink/ddl.py): a few seconds cover both.
    time.sleep(5)
