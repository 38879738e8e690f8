"""Bronze landing on the local stack: every message produced is in bronze exactly once, even when a
Kafka broker is killed and brought back while the producer sends at a steady rate.

Runs on topics, an HDFS folder and a Hive database of its own (a per-run prefix); the bronze job
it starts is cancelled at the end and its topics, files and tables removed.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import signal
import threading
import time
import uuid

import pytest
import requests

from cdr.contract import RECORD_TYPES
from tests.integration.conftest import own_topics, prometheus_values
from tests.integration.thrift import query

pytestmark = pytest.mark.stack

RATE = 4000            # records/s, steady
DURATION_S = 30
KILL_AT_S = 6          # the broker dies this long after the producer starts...
RESTART_AFTER_S = 8    # ...and is started again this long after
VICTIM = "kafka-2"


@pytest.fixture(scope="module")
def bronze_env(local_stack):
    from streaming import jobs

    with own_topics("itb", cancels=(), CDR_BRONZE__DIR="tests/bronze-{run}",
                    CDR_BRONZE__DATABASE="itb_{run}_raw", CDR_BRONZE__CHECKPOINT_INTERVAL_S="5") as settings:
        jobs.stop(settings, "bronze", savepoint=False)  # one bronze job at a time on the cluster
        jobs.start(settings, "bronze", fresh=True)
        try:
            yield settings
        finally:
            jobs.stop(settings, "bronze", savepoint=False)  # here, before its files go: it writes no more
            query(local_stack, f"DROP DATABASE IF EXISTS `{settings.bronze.database}` CASCADE")
            path = settings.bronze_uri.removeprefix(settings.hdfs.uri)
            requests.delete(f"http://127.0.0.1:{settings.hdfs.namenode_http_port}/webhdfs/v1{path}",
                            params={"op": "DELETE", "recursive": "true", "user.name": getpass.getuser()}, timeout=30)


def _bronze_fingerprint(local_stack, settings) -> tuple:
    """Rows, distinct Kafka positions and distinct record ids over all CDR topics, and a sum of every
    row's hash: equal only for the same rows."""
    from streaming.bronze_tables import register

    register(settings)
    columns = "kafka_key, kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, ingested_at, payload, " \
              "record_id, start_time, served_msisdn, cell_id, `date`"
    ((*counts, digest),) = query(
        local_stack,
        "SELECT COUNT(*), COUNT(DISTINCT kafka_topic, kafka_partition, kafka_offset), COUNT(DISTINCT record_id),"
        f" SUM(CAST(xxhash64({columns}) AS DECIMAL(38, 0))) FROM `{settings.bronze.database}`.bronze_cdr")
    return (*counts, digest)


def _bronze_counts(local_stack, settings) -> tuple[int, int, int]:
    """Rows, distinct Kafka positions and distinct record ids over all CDR topics."""
    return _bronze_fingerprint(local_stack, settings)[:3]


def _wait_for_rows(local_stack, settings, expected: int, timeout_s: float = 180) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = _bronze_counts(local_stack, settings)
        if counts[0] >= expected or time.monotonic() > deadline:
            return counts
        time.sleep(5)


def test_the_started_job_is_expected_in_prometheus(bronze_env):
    """Starting a job pushed cdr_stream_job_expected for it to the Pushgateway (cdr/pushgateway.py),
    named as Flink's reporter names the job's own series; the last test checks that stopping deletes it."""
    query = 'cdr_stream_job_expected{job="cdr-stream", job_name="cdr_bronze"}'
    assert prometheus_values(bronze_env, query, {"": 1}) == {"": 1}


def test_every_record_is_in_bronze_exactly_once_when_a_broker_dies_and_returns(bronze_env, local_stack):
    from stack.process import is_alive, signal_group
    from streaming import jobs
    from streaming.producer import Pacing, send
    from streaming.source import LiveOptions, LiveSource

    events: dict[str, float] = {}

    def kill_and_restart() -> None:
        time.sleep(KILL_AT_S)
        victim = local_stack.store.get(VICTIM)
        signal_group(victim, signal.SIGKILL)
        events["killed"] = time.monotonic()
        time.sleep(RESTART_AFTER_S)
        events["dead_before_restart"] = not is_alive(victim)
        local_stack.up()  # restarts exactly the crashed broker
        events["restarted"] = time.monotonic()

    chaos = threading.Thread(target=kill_and_restart)
    source = LiveSource(LiveOptions(subscribers=8000, days=1, scenarios=()))
    chaos.start()
    started = time.monotonic()
    prog = send(bronze_env, source.batches(), Pacing(rate=RATE), duration_s=DURATION_S)
    chaos.join()

    assert events["dead_before_restart"] and events["killed"] - started < DURATION_S
    assert prog.errors == 0 and prog.delivered == prog.sent > 0.9 * RATE * DURATION_S
    # The rate held while a broker was gone (acks=all with two in-sync replicas left).
    assert abs(prog.rate - RATE) <= 0.05 * RATE, prog.rate
    # Once the job's committed offsets reach the topics' ends, every record is in a committed file.
    assert jobs.wait_caught_up(bronze_env, "bronze", 180)
    assert _bronze_counts(local_stack, bronze_env) == (prog.sent, prog.sent, prog.sent)
    time.sleep(2 * bronze_env.bronze.checkpoint_interval_s)  # later checkpoints add nothing
    assert _bronze_counts(local_stack, bronze_env) == (prog.sent, prog.sent, prog.sent)


def test_malformed_messages_and_subscriber_profiles_land_as_they_arrived(bronze_env, local_stack):
    from generator.population import build_population
    from cdr.profile import load_profile
    from streaming.producer import make_producer, send_subscribers
    from streaming.source import LiveOptions

    db = bronze_env.bronze.database
    before = _bronze_counts(local_stack, bronze_env)[0]
    corpus = [b"not json at all", b'{"record_id":"BAD1","record_type":"voice","start_time":"2025-12-28T1',
              json.dumps({"record_id": "BAD2", "record_type": "voice", "duration_s": "ten"}).encode()]
    producer = make_producer(bronze_env)
    topic = bronze_env.topics.for_record_type("voice")
    for payload in corpus:
        producer.produce(topic, payload, b"213000000000")
    assert producer.flush(30) == 0
    population = build_population(load_profile("algeria"), 200, LiveOptions.start, 7).table
    prog = send_subscribers(bronze_env, population)
    assert prog.errors == 0 and prog.delivered == population.num_rows

    _wait_for_rows(local_stack, bronze_env, before + len(corpus))
    landed = query(local_stack, f"SELECT payload, record_id, duration_s, start_time FROM `{db}`.bronze_voice"
                                f" WHERE kafka_key = '213000000000' ORDER BY kafka_timestamp, payload")
    assert sorted(landed) == sorted([
        ("not json at all", None, None, None),
        (corpus[1].decode(), None, None, None),  # cut short: not JSON, no field readable
        (corpus[2].decode(), "BAD2", None, None),  # wrong type: the field is NULL, the payload keeps it
    ])
    deadline = time.monotonic() + 120
    while True:
        from streaming.bronze_tables import register

        register(bronze_env)
        ((n, distinct_ids, with_msisdn),) = query(
            local_stack, f"SELECT COUNT(*), COUNT(DISTINCT subscriber_id), COUNT(msisdn) FROM `{db}`.bronze_subscribers")
        if n >= population.num_rows or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert (n, distinct_ids, with_msisdn) == (population.num_rows,) * 3
    assert set(RECORD_TYPES) <= {t.removeprefix("bronze_") for (_, t, *_) in query(
        local_stack, f"SHOW TABLES IN `{db}`")}


def test_a_restarted_job_keeps_its_consumer_group_and_knows_when_it_has_caught_up(bronze_env, local_stack):
    from streaming import jobs
    from streaming.producer import make_producer

    group = jobs.consumer_group(bronze_env, "bronze")
    assert jobs.wait_caught_up(bronze_env, "bronze", 120)
    before = _bronze_counts(local_stack, bronze_env)
    assert jobs.stop(bronze_env, "bronze") is not None  # with a savepoint
    jobs.start(bronze_env, "bronze")
    assert jobs.consumer_group(bronze_env, "bronze") == group
    # Restored with nothing new to read: caught up (its group's offsets are at the ends already).
    assert jobs.wait_caught_up(bronze_env, "bronze", 60)
    producer = make_producer(bronze_env)
    for i in range(3):
        producer.produce(bronze_env.topics.for_record_type("sms"), json.dumps({"record_id": f"RESTART{i}"}).encode(),
                         b"213000000001")
    assert producer.flush(30) == 0
    # Only commits of the restarted job to the same group can cover these three.
    assert jobs.wait_caught_up(bronze_env, "bronze", 60)
    assert _bronze_counts(local_stack, bronze_env) == tuple(n + 3 for n in before)


def _committed_files(settings) -> int:
    """Committed files in the bronze landing's CDR date folders (WebHDFS)."""
    root = settings.bronze_uri.removeprefix(settings.hdfs.uri)
    url = f"http://127.0.0.1:{settings.hdfs.namenode_http_port}/webhdfs/v1"

    def listing(path: str) -> list[dict]:
        reply = requests.get(f"{url}{path}", params={"op": "LISTSTATUS"}, timeout=30)
        return reply.json()["FileStatuses"]["FileStatus"] if reply.status_code == 200 else []

    return sum(1 for rt in RECORD_TYPES
               for day in listing(f"{root}/cdr/record_type={rt}") if day["type"] == "DIRECTORY"
               for f in listing(f"{root}/cdr/record_type={rt}/{day['pathSuffix']}")
               if f["type"] == "FILE" and not f["pathSuffix"].startswith((".", "_")))


def _cdr(*args: str, timeout_s: float = 900) -> str:
    """Run the `cdr` CLI; the bronze_env overrides (this run's folder and database) are in the environment."""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([str(Path(sys.executable).parent / "cdr"), *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_compaction_keeps_every_row_once_beside_the_job_and_across_its_restart(bronze_env, local_stack):
    """`cdr stream compact` merges the small files; the rows stay exactly the same. A restart from a
    savepoint whose files were merged away runs, and merging while the job lands a steady stream
    loses and doubles nothing."""
    from streaming import jobs
    from streaming.producer import Pacing, send
    from streaming.source import LiveOptions, LiveSource

    assert jobs.wait_caught_up(bronze_env, "bronze", 120)
    assert jobs.stop(bronze_env, "bronze") is not None  # its savepoint's files are committed at the stop
    before, files_before = _bronze_fingerprint(local_stack, bronze_env), _committed_files(bronze_env)
    assert "bronze_voice" in _cdr("stream", "compact")
    files_after = _committed_files(bronze_env)
    assert files_after < files_before / 3, (files_before, files_after)
    assert _bronze_fingerprint(local_stack, bronze_env) == before
    # The restart re-commits the savepoint's pending files: merged away, so nothing to do.
    jobs.start(bronze_env, "bronze")
    sent: dict[str, int] = {}

    def stream() -> None:
        # The next day: its record ids are new (they count per day), and the batch test reads the first.
        source = LiveSource(LiveOptions(subscribers=2000, days=1, scenarios=(), start=LiveOptions.start + dt.timedelta(days=1)))
        prog = send(bronze_env, source.batches(), Pacing(rate=1500), duration_s=25)
        sent.update(sent=prog.sent, errors=prog.errors)

    producer = threading.Thread(target=stream)
    producer.start()
    time.sleep(8)  # a few checkpoints' files committed beside the merged ones
    _cdr("stream", "compact")
    producer.join()
    assert sent["errors"] == 0 and sent["sent"] > 0
    assert jobs.wait_caught_up(bronze_env, "bronze", 120)
    assert _bronze_counts(local_stack, bronze_env) == tuple(n + sent["sent"] for n in before[:3])
    assert jobs.running(bronze_env, "bronze").state == "RUNNING"


def test_the_batch_layer_validates_the_bronze_landing_like_operator_files(bronze_env, local_stack, tmp_path):
    """`cdr batch run --from-bronze`: the bronze CDRs of a day reconcile exactly in the batch layer."""
    import pyarrow.parquet as pq

    from streaming.source import LiveOptions, LiveSource

    day = LiveOptions.start.isoformat()
    population = LiveSource(LiveOptions(subscribers=8000, days=1, scenarios=())).engine.pop  # the producer's
    reference = tmp_path / "reference"
    for name, table in (("subscribers", population.table), ("cells", population.cells.table)):
        (reference / name).mkdir(parents=True)
        pq.write_table(table, reference / name / "part-00000.parquet")
    root = f"{bronze_env.hdfs.uri}/cdr-it/bronze-batch-{uuid.uuid4().hex[:8]}"
    prefix = f"itbb_{uuid.uuid4().hex[:6]}_"
    common = ["--date", day, "--dev-key", "--root", root, "--db-prefix", prefix]
    _cdr("batch", "run", "--input", str(reference), "--step", "land", *common)  # the reference data alone
    _cdr("batch", "run", "--from-bronze", "--step", "land", "--step", "validate", *common)
    try:
        ((bronze_rows,),) = query(local_stack, f"SELECT COUNT(*) FROM `{bronze_env.bronze.database}`.bronze_cdr"
                                               f" WHERE `date` = '{day}'")
        recon = query(local_stack, f"SELECT SUM(records_in), SUM(clean), SUM(quarantined), SUM(duplicates),"
                                   f" MIN(balanced) FROM {prefix}cdr_ops.reconciliation")
        assert bronze_rows > 0
        # No defects were injected: every bronze record of the day is clean, none lost, none doubled.
        assert recon == [(bronze_rows, bronze_rows, 0, 0, True)]
    finally:
        for db in ("cdr_raw", "cdr_clean", "cdr_ops"):
            query(local_stack, f"DROP DATABASE IF EXISTS {prefix}{db} CASCADE")
        requests.delete(f"http://127.0.0.1:{bronze_env.hdfs.namenode_http_port}/webhdfs/v1"
                        f"{root.removeprefix(bronze_env.hdfs.uri)}",
                        params={"op": "DELETE", "recursive": "true", "user.name": getpass.getuser()}, timeout=30)


def test_reset_pieces_empty_the_topics_and_remove_the_bronze_landing(bronze_env, local_stack):
    """What `cdr stream reset` does to topics and bronze (its PostgreSQL truncation is not run
    here: the serving tables are shared with whatever else runs on the stack)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    from streaming import jobs
    from streaming.bronze_tables import register, remove
    from streaming.topics import apply_topics, declared_topics, delete_topics

    jobs.stop(bronze_env, "bronze", savepoint=False)
    # Stopped on purpose: no longer expected (its Pushgateway group is gone; Prometheus follows at a scrape).
    pushed = requests.get(f"{bronze_env.prometheus.pushgateway_url}/metrics", timeout=10).text
    assert 'job_name="cdr_bronze"' not in pushed
    names = [t.name for t in declared_topics(bronze_env)]
    assert sorted(delete_topics(bronze_env)) == sorted(names)
    assert set(apply_topics(bronze_env).values()) == {"created"}
    consumer = Consumer({"bootstrap.servers": bronze_env.kafka.bootstrap, "group.id": "itb-reset"})

    def end_offset(tp: TopicPartition) -> int:
        deadline = time.monotonic() + 30
        while True:  # a partition just created answers "not leader" until its leader is elected
            try:
                return consumer.get_watermark_offsets(tp, timeout=10)[1]
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    ends = [end_offset(TopicPartition(n, p)) for n in names for p in range(bronze_env.topics.partitions)]
    consumer.close()
    assert ends == [0] * len(names) * bronze_env.topics.partitions

    register(bronze_env)  # the tables exist (also when this test runs alone) ...
    db = bronze_env.bronze.database
    assert len(query(local_stack, f"SHOW TABLES IN `{db}`")) == len(RECORD_TYPES) + 2  # + subscribers, view
    remove(bronze_env)  # ... and are gone
    assert [t for (_, t, *_) in query(local_stack, f"SHOW TABLES IN `{db}`")] == []
    status = requests.get(f"http://127.0.0.1:{bronze_env.hdfs.namenode_http_port}/webhdfs/v1"
                          f"{bronze_env.bronze_uri.removeprefix(bronze_env.hdfs.uri)}",
                          params={"op": "GETFILESTATUS"}, timeout=10)
    assert status.status_code == 404
