"""End-to-end checks of the running container stack (`make smoke`), run inside the platform image
by the one-shot `cdr` service (compose/tools.yaml, profile tools) so that it reaches every service the way the
project's code does: at the local stack's loopback addresses, forwarded by cdr-entrypoint.

SMOKE_CHECKS picks the checks (compose.py passes those whose services run):
  kafka       produce a record to a fresh topic (replication 3) and consume it back
  hive        create, fill and query a table through the Spark Thrift Server (HDFS + metastore)
  flink       at least one Flink job RUNNING
  prometheus  every job in SMOKE_PROMETHEUS_JOBS has all its targets up
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
import uuid

from cdr.settings import get_settings


def check_kafka(settings) -> str:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    conf = {"bootstrap.servers": settings.kafka.bootstrap}
    admin = AdminClient(conf)
    topic = f"cdr.smoke.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 1, settings.kafka.default_replication_factor,
                                  config={"min.insync.replicas": str(settings.kafka.min_insync_replicas)})]
                        )[topic].result(30)
    try:
        payload = uuid.uuid4().hex.encode()
        producer = Producer({**conf, "acks": "all"})
        producer.produce(topic, payload)
        if producer.flush(30) != 0:
            raise RuntimeError("record not acknowledged by 2 in-sync replicas within 30 s")
        consumer = Consumer({**conf, "group.id": topic, "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                msg = consumer.poll(1)
                if msg is not None and not msg.error() and msg.value() == payload:
                    return f"produced and consumed a record on {topic} (replication {settings.kafka.default_replication_factor})"
        finally:
            consumer.close()
        raise RuntimeError("the record did not come back within 30 s")
    finally:
        admin.delete_topics([topic])


def check_hive(settings) -> str:
    from pyhive import hive

    with hive.connect("127.0.0.1", settings.hive.thrift_port, username="cdr") as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS default.compose_smoke (id INT) STORED AS PARQUET")
        cur.execute("INSERT INTO default.compose_smoke VALUES (1), (2)")
        cur.execute("SELECT count(*) FROM default.compose_smoke")
        (count,) = cur.fetchone()
        cur.execute("DROP TABLE default.compose_smoke")
    if count < 2:
        raise RuntimeError(f"expected at least 2 rows, read {count}")
    return f"created, filled and queried a Hive table through the Thrift Server ({count} rows)"


def check_flink(settings) -> str:
    url = f"http://127.0.0.1:{settings.flink.rest_port}/jobs/overview"
    jobs = json.load(urllib.request.urlopen(url, timeout=10))["jobs"]
    running = [j["name"] for j in jobs if j["state"] == "RUNNING"]
    if not running:
        raise RuntimeError(f"no RUNNING job ({[(j['name'], j['state']) for j in jobs] or 'none submitted'})")
    return f"Flink jobs RUNNING: {', '.join(running)}"


def check_prometheus(settings) -> str:
    expected = {j for j in os.environ.get("SMOKE_PROMETHEUS_JOBS", "").split(",") if j}
    url = os.environ.get("PROMETHEUS_URL", "http://prometheus:9090") + "/api/v1/targets"
    # A target is scraped every 10 s: give new ones a few rounds.
    deadline = time.monotonic() + 60
    while True:
        targets = json.load(urllib.request.urlopen(url, timeout=10))["data"]["activeTargets"]
        down = sorted(f"{t['labels']['job']}@{t['labels']['instance']}: {t['health']}"
                      for t in targets if t["labels"].get("job") in expected and t["health"] != "up")
        missing = expected - {t["labels"].get("job") for t in targets}
        if not down and not missing:
            return f"Prometheus: all targets of {len(expected)} jobs up"
        if time.monotonic() > deadline:
            raise RuntimeError(f"targets not up: {down}; jobs without targets: {sorted(missing)}")
        time.sleep(5)


CHECKS = {"kafka": check_kafka, "hive": check_hive, "flink": check_flink, "prometheus": check_prometheus}


def main() -> int:
    settings = get_settings()
    failed = 0
    for name in [c for c in os.environ.get("SMOKE_CHECKS", ",".join(CHECKS)).split(",") if c]:
        try:
            print(f"ok    {name:<11} {CHECKS[name](settings)}", flush=True)
        except Exception as exc:  # report every check, then fail
            failed += 1
            print(f"FAIL  {name:<11} {type(exc).__name__}: {exc}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
