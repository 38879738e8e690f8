"""The Flink session cluster runs a SQL job from Kafka to PostgreSQL (Kafka and JDBC connectors).

The JDBC connector is 4.0.0-2.0 (built for Flink 2.0; no 4.1.0-2.2 on Maven Central): this
test is what shows it works on the stack's Flink 2.2.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import time
import uuid

import pytest
import requests

pytestmark = pytest.mark.stack

KAFKA_TO_JDBC_JOB = textwrap.dedent(
    """
    import sys
    from pyflink.table import EnvironmentSettings, TableEnvironment

    bootstrap, topic, jdbc_url, user, table = sys.argv[1:6]
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.execute_sql(f'''
        CREATE TABLE calls (caller STRING, seconds INT) WITH (
            'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}',
            'properties.group.id' = 'stack-test-{topic}', 'scan.startup.mode' = 'earliest-offset',
            'format' = 'json')''')
    t_env.execute_sql(f'''
        CREATE TABLE call_totals (caller STRING, seconds INT, PRIMARY KEY (caller) NOT ENFORCED) WITH (
            'connector' = 'jdbc', 'url' = '{jdbc_url}', 'table-name' = '{table}',
            'username' = '{user}', 'password' = 'unused-trust-auth',
            'sink.buffer-flush.interval' = '500ms')''')
    t_env.execute_sql("INSERT INTO call_totals SELECT caller, SUM(seconds) FROM calls GROUP BY caller")
    """
)


def _produce(bootstrap: str, topic: str, records: list[dict]) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 2, 3)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for record in records:
        producer.produce(topic, json.dumps(record).encode())
    assert producer.flush(30) == 0


def _rows(local_stack, table: str) -> list[tuple]:
    from stack.services.postgres import connect

    with connect(local_stack.settings, local_stack.settings.postgres.serving_db) as conn:
        return conn.execute(f"SELECT caller, seconds FROM {table} ORDER BY caller").fetchall()


def test_sql_job_reads_kafka_and_upserts_into_postgresql(local_stack, tmp_path):
    from stack.services.flink import client_env, flink_cli
    from stack.services.postgres import connect

    settings = local_stack.settings
    suffix = uuid.uuid4().hex[:8]
    topic, table = f"stack-test-calls-{suffix}", f"stack_test_call_totals_{suffix}"
    with connect(settings, settings.postgres.serving_db) as conn:
        conn.execute(f"CREATE TABLE {table} (caller TEXT PRIMARY KEY, seconds INT NOT NULL)")
    _produce(
        settings.kafka.bootstrap,
        topic,
        [{"caller": "alice", "seconds": 60}, {"caller": "bob", "seconds": 5}, {"caller": "alice", "seconds": 40}],
    )
    script = tmp_path / "kafka_to_jdbc.py"
    script.write_text(KAFKA_TO_JDBC_JOB)
    jdbc_url = f"jdbc:postgresql://127.0.0.1:{settings.postgres.port}/{settings.postgres.serving_db}"
    submitted = subprocess.run(
        [str(flink_cli(settings)), "run", "--detached", "--python", str(script),
         settings.kafka.bootstrap, topic, jdbc_url, settings.postgres.user, table],
        env={**os.environ, **client_env(settings)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    job_id = re.search(r"JobID ([0-9a-f]{32})", submitted.stdout).group(1)
    rest = f"http://127.0.0.1:{settings.flink.rest_port}"
    try:
        deadline = time.monotonic() + 120
        while _rows(local_stack, table) != [("alice", 100), ("bob", 5)] and time.monotonic() < deadline:
            time.sleep(1)
        assert requests.get(f"{rest}/jobs/{job_id}", timeout=10).json()["state"] == "RUNNING"
        assert _rows(local_stack, table) == [("alice", 100), ("bob", 5)]
    finally:
        requests.patch(f"{rest}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)
    deadline = time.monotonic() + 60
    while (state := requests.get(f"{rest}/jobs/{job_id}", timeout=10).json()["state"]) != "CANCELED":
        assert time.monotonic() < deadline, f"job still {state} a minute after cancel"
        time.sleep(1)
