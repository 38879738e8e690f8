"""`make bench-stream`: producer throughput against Kafka's own perf tool, detection drain rate.

All three producers send the same CDR-sized records to a bench topic of the three-broker
cluster with the same settings (acks=all, idempotence, lz4, linger 20 ms, 512 KiB batches):

- ours (confluent-kafka, the JSON messages of one generated day, pre-rendered);
- kafka-python, the client the platform names, on the same messages (gzip: it ships no lz4);
- ``org.apache.kafka.tools.ProducerPerformance`` with the mean record size of those messages.

Then the jobs drain the CDRs pre-loaded into the bench topics, each timed from its submission:
the bronze landing until the offsets it commits with its checkpoints (so: records in committed
Parquet files) cover every record, the detection job until its own metric (records valid plus
dead-lettered) has counted every record.
Results are printed as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

BENCH_PREFIX = f"bench-{uuid.uuid4().hex[:6]}.cdr."


def _use_bench_topics() -> None:
    os.environ["CDR_TOPICS__PREFIX"] = BENCH_PREFIX
    os.environ["CDR_TOPICS__DEAD_LETTER"] = BENCH_PREFIX + "dead-letter"
    os.environ["CDR_TOPICS__SUBSCRIBERS"] = BENCH_PREFIX + "subscribers"
    os.environ["CDR_BRONZE__DIR"] = f"bench/{BENCH_PREFIX.rstrip('.')}"
    os.environ["CDR_BRONZE__CHECKPOINT_INTERVAL_S"] = "5"


def _messages(subscribers: int, days: int):
    from streaming.source import LiveOptions, LiveSource

    source = LiveSource(LiveOptions(subscribers=subscribers, days=days))
    return list(source.batches()), source


def bench_ours(settings, batches) -> tuple[float, int]:
    from streaming.producer import Pacing, send

    began = time.perf_counter()
    prog = send(settings, iter(batches), Pacing(rate=None))
    elapsed = time.perf_counter() - began  # until the last acknowledgement (send() flushes)
    assert prog.errors == 0, prog.last_error
    return prog.delivered / elapsed, prog.delivered


def bench_kafka_python(settings, values: list[bytes], keys: list[bytes], topic: str) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap.split(","), acks="all",
                             enable_idempotence=True, compression_type="gzip", linger_ms=20,
                             batch_size=512 * 1024, max_in_flight_requests_per_connection=5)
    began = time.perf_counter()
    for k, v in zip(keys, values):
        producer.send(topic, value=v, key=k)
    producer.flush()
    elapsed = time.perf_counter() - began
    producer.close()
    return len(values) / elapsed


def bench_java(settings, topic: str, records: int, record_size: int) -> float | None:
    from stack.java import java
    from stack.paths import StackPaths

    tools = sorted(Path.home().glob(".m2/repository/org/apache/kafka/kafka-tools/*/kafka-tools-*.jar"))
    if not tools:
        print("kafka-tools jar not found (mvn dependency:get -Dartifact=org.apache.kafka:kafka-tools:4.1.1)")
        return None
    jars = StackPaths.from_settings(settings).jar_group("kafka")
    cp = ":".join([str(tools[-1]), str(jars / "*")])
    out = subprocess.run(
        [java(settings), "-Xmx512m", "-cp", cp, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
         "--num-records", str(records), "--record-size", str(record_size), "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={settings.kafka.bootstrap}", "acks=all", "enable.idempotence=true",
         "compression.type=lz4", "linger.ms=20", "batch.size=524288"],
        capture_output=True, text=True, timeout=600)
    found = re.findall(r"([\d.]+) records/sec", out.stdout)
    if not found:
        print(out.stdout[-2000:], out.stderr[-2000:])
        return None
    return float(found[-1])


def bench_drain(settings, source, expected: int, cells_dir: Path, timeout_s: float = 1800) -> tuple[float, int]:
    from cdr.pseudonym import DEVELOPMENT_KEY
    from streaming import jobs

    cells = jobs.write_cells(source.engine.pop.cells.table, cells_dir / "bench-cells.parquet", 6)
    jobs.stop(settings, "detection", savepoint=False)
    began = time.perf_counter()
    state = jobs.start(settings, "detection", DEVELOPMENT_KEY, cells, fresh=True)
    last, last_change = -1.0, time.perf_counter()
    try:
        while time.perf_counter() - began < timeout_s:
            m = jobs.job_metrics(settings, state.job_id)
            done = m.get("records_valid", 0) + m.get("records_dead_lettered", 0)
            if done != last:
                last, last_change = done, time.perf_counter()
            if done >= expected:
                break
            time.sleep(2)
    finally:
        jobs.stop(settings, "detection", savepoint=False)
    return last / (last_change - began), int(last)


def committed_offsets(settings, group: str) -> int:
    """Sum of the offsets ``group`` has committed on the CDR topics."""
    from confluent_kafka import Consumer, TopicPartition

    from streaming.topics import cdr_topics

    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap, "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for topic in cdr_topics(settings).values()
                 for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def bench_bronze(settings, expected: int, timeout_s: float = 1800) -> tuple[float, int]:
    from streaming import jobs

    group = f"bench-bronze-{uuid.uuid4().hex[:6]}"
    jobs.stop(settings, "bronze", savepoint=False)
    began = time.perf_counter()
    jobs.start(settings, "bronze", fresh=True, group_id=group)
    done, finished = 0, began
    try:
        while time.perf_counter() - began < timeout_s and done < expected:
            time.sleep(1)
            now = committed_offsets(settings, group)
            if now != done:
                done, finished = now, time.perf_counter()
    finally:
        jobs.stop(settings, "bronze", savepoint=False)
    return done / (finished - began), done


def _row(measure: str, result: str, workload: str) -> None:
    """Printed as measured, so a later failure keeps the earlier results."""
    print(f"| {measure} | {result} | {workload} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=40_000, help="population (one day ≈ 28 CDRs per subscriber)")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--kafka-python-records", type=int, default=200_000)
    parser.add_argument("--skip-drain", action="store_true")
    args = parser.parse_args()

    _use_bench_topics()
    from cdr.settings import get_settings
    from streaming.topics import admin_client, apply_topics, declared_topics

    settings = get_settings()
    apply_topics(settings)
    print("| measure | result | workload |\n|---|---|---|", flush=True)
    try:
        batches, source = _messages(args.subscribers, args.days)
        values = [v for b in batches for v in b.values]
        keys = [k for b in batches for k in b.keys]
        size = round(sum(map(len, values)) / len(values))
        ours, n = bench_ours(settings, batches)
        _row("producer, ours (confluent-kafka, lz4)", f"{ours:,.0f} records/s", f"{n:,} records of {size} B")
        k = args.kafka_python_records
        kp = bench_kafka_python(settings, values[:k], keys[:k], BENCH_PREFIX + "kafka-python")
        _row("producer, kafka-python (gzip)", f"{kp:,.0f} records/s", f"{k:,} records of {size} B")
        jv = bench_java(settings, BENCH_PREFIX + "java", n, size)
        if jv:
            _row("kafka ProducerPerformance (Java, lz4)", f"{jv:,.0f} records/s", f"{n:,} records of {size} B")
            _row("ours / Java", f"{ours / jv:.2f}", "goal ≥ 0.5")
        if not args.skip_drain:
            from cdr.settings import REPO_ROOT

            rate, done = bench_bronze(settings, n)
            _row("bronze landing drain (parallelism 1, 5 s checkpoints)", f"{rate:,.0f} records/s",
                 f"{done:,} pre-loaded CDRs in committed Parquet on HDFS")

            rate, done = bench_drain(settings, source, n, REPO_ROOT / "data" / "stream")
            _row("detection drain (parallelism 1)", f"{rate:,.0f} records/s", f"{done:,} pre-loaded CDRs")
    finally:
        _remove_bronze(settings)
        names = [t.name for t in declared_topics(settings)] + [BENCH_PREFIX + "kafka-python", BENCH_PREFIX + "java"]
        from confluent_kafka import KafkaException

        admin = admin_client(settings)  # kept referenced until the deletions complete
        for done in admin.delete_topics(names).values():
            try:
                done.result()
            except KafkaException:  # a topic this run did not get as far as creating
                pass


def _remove_bronze(settings) -> None:
    import getpass

    import httpx

    path = settings.bronze_uri.removeprefix(settings.hdfs.uri)
    httpx.delete(f"http://127.0.0.1:{settings.hdfs.namenode_http_port}/webhdfs/v1{path}",
                 params={"op": "DELETE", "recursive": "true", "user.name": getpass.getuser()}, timeout=30)


if __name__ == "__main__":
    main()
