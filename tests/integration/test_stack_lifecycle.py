"""`cdr stack up/down/status` behaviour: failures, stale pids, crashes, restarts that keep data.

The first tests use stand-in services (small Python processes) in a temporary stack home and
need nothing installed; the `stack`-marked ones use the real services.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from cdr.errors import CdrError
from cdr.settings import Settings
from stack.lifecycle import Stack
from stack.paths import StackPaths
from stack.probes import NotReady
from stack.process import ProcessRecord, ProcessSpec, is_alive
from stack.services.base import Endpoint, Service

CDR = str(Path(sys.executable).parent / "cdr")


class StandIn(Service):
    """A service whose process is a Python one-liner; ready once it has printed 'ready'."""

    needs_java = False

    def __init__(self, settings: Settings, name: str, code: str, ports: list[int] | None = None) -> None:
        self.name = name  # type: ignore[misc]  # instance-level on purpose: several stand-ins
        super().__init__(settings, StackPaths.from_settings(settings))
        self.code, self.ports = code, ports or []

    def processes(self) -> list[ProcessSpec]:
        # The stack home in argv is the identity marker, as for the real services.
        argv = [sys.executable, "-c", self.code, str(self.paths.home)]
        return [ProcessSpec(self.name, argv, ports=self.ports, marker=str(self.paths.home))]

    def probe(self) -> None:
        if "ready" not in self.paths.log(self.name).read_text():
            raise NotReady("has not printed 'ready'")

    def endpoints(self) -> list[Endpoint]:
        return []


SLEEPER = "import time; print('ready', flush=True); time.sleep(600)"
CRASHER = "print('cannot bind 127.0.0.1:1: boom', flush=True); raise SystemExit(3)"


@pytest.fixture
def temp_settings(tmp_path) -> Settings:
    return Settings(stack={"home": str(tmp_path / "stack"), "ready_timeout_s": 30})


def test_a_service_dying_at_start_fails_up_with_its_log_and_stops_what_this_run_started(temp_settings):
    sleeper = StandIn(temp_settings, "sleeper", SLEEPER)
    crasher = StandIn(temp_settings, "crasher", CRASHER)
    stack = Stack(temp_settings, services=[sleeper, crasher])

    with pytest.raises(CdrError) as failure:
        stack.up()

    message = str(failure.value)
    assert message.startswith("crasher failed to start: process crasher")
    assert "exited with code 3" in message
    assert "cannot bind 127.0.0.1:1: boom" in message  # the end of its log
    assert stack.store.all() == []  # the sleeper it had started is stopped and forgotten
    assert [s.state for s in stack.status(probe=False)] == ["down", "down"]


def test_a_taken_port_is_named_with_its_owner_before_anything_starts(temp_settings):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        stack = Stack(temp_settings, services=[StandIn(temp_settings, "sleeper", SLEEPER, ports=[port])])
        with pytest.raises(CdrError) as failure:
            stack.up()
    assert f"port {port} needed by sleeper is in use by pid {os.getpid()}" in str(failure.value)
    assert stack.store.all() == []


def test_a_stale_pid_record_is_reported_crashed_and_never_signalled(temp_settings):
    stack = Stack(temp_settings, services=[StandIn(temp_settings, "sleeper", SLEEPER)])
    # Our own pid, as if recycled: alive, but not the process that was started.
    record = ProcessRecord("sleeper", "sleeper", os.getpid(), 1, "some-other-boot", "marker", "x.log", [], 15)
    stack.store.put(record)

    assert not is_alive(record)
    assert stack.status(probe=False)[0].state == "crashed"
    assert stack.down() == []  # nothing signalled: this test process is still here to assert
    assert stack.store.all() == []


def test_up_is_idempotent_and_down_stops_exactly_the_recorded_processes(temp_settings):
    stack = Stack(temp_settings, services=[StandIn(temp_settings, "sleeper", SLEEPER)])
    first = stack.up()
    pid = stack.store.get("sleeper").pid
    second = stack.up()
    assert [t.started for t in first + second] == [True, False]
    assert stack.store.get("sleeper").pid == pid
    assert stack.down() == ["sleeper"]
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


# --- the real stack ------------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CDR, "stack", *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def _temp_home_with_jars(tmp_path: Path, local_stack: Stack) -> Path:
    home = tmp_path / "other-stack"
    home.mkdir()
    (home / "jars").symlink_to(local_stack.paths.jars)
    return home


@pytest.mark.stack
def test_cli_up_with_a_taken_port_exits_non_zero_naming_service_and_port(local_stack, tmp_path):
    home = _temp_home_with_jars(tmp_path, local_stack)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _cli("up", env={"CDR_STACK__HOME": str(home), "CDR_POSTGRES__PORT": str(port)})
    assert result.returncode == 3  # a port taken: service unavailable (docs/operations.md)
    assert f"port {port} needed by postgres is in use by pid {os.getpid()}" in result.stderr
    assert not (home / "run").exists() or not any((home / "run").iterdir())
    assert all(s.state == "running" for s in local_stack.status(probe=False))  # main stack untouched


@pytest.mark.stack
def test_cli_up_without_java_exits_non_zero_naming_java(local_stack, tmp_path):
    home = _temp_home_with_jars(tmp_path, local_stack)
    result = _cli("up", env={"CDR_STACK__HOME": str(home), "CDR_STACK__JAVA_HOME": "/nonexistent/jdk"})
    assert result.returncode == 2
    assert "Java not found: /nonexistent/jdk/bin/java does not exist" in result.stderr


@pytest.mark.stack
def test_status_json_reports_every_service_running_and_ready(local_stack):
    result = _cli("status", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    services = {s["name"]: s for s in json.loads(result.stdout)["services"]}
    # Optional services (Superset) are listed after the default ones, once they have been started.
    assert list(services)[:6] == ["postgres", "hdfs", "kafka", "hive", "flink", "monitoring"]
    assert list(services)[6:] in ([], ["superset"])
    for service in services.values():
        assert (service["state"], service["ready"]) == ("running", True), service
        assert all(Path(f"/proc/{p['pid']}").exists() for p in service["processes"])
    kafka_ports = {port for p in services["kafka"]["processes"] for port in p["ports"]}
    assert set(local_stack.settings.kafka.broker_ports) <= kafka_ports
    assert services["postgres"]["processes"][0]["ports"] == [local_stack.settings.postgres.port]


@pytest.mark.stack
def test_a_crashed_process_is_reported_and_up_restarts_only_it(local_stack):
    before = {r.name: r.pid for r in local_stack.store.all()}
    os.kill(before["alertmanager"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_alive(local_stack.store.get("alertmanager")) and time.monotonic() < deadline:
        time.sleep(0.1)

    monitoring = next(s for s in local_stack.status(probe=False) if s.name == "monitoring")
    assert monitoring.state == "crashed"
    assert {p.name: p.state for p in monitoring.processes} == {"alertmanager": "crashed", "prometheus": "running",
                                                               "pushgateway": "running"}

    timings = {t.service: t.started for t in local_stack.up()}
    after = {r.name: r.pid for r in local_stack.store.all()}
    assert timings == {
        "postgres": False,
        "hdfs": False,
        "kafka": False,
        "hive": False,
        "flink": False,
        "monitoring": True,
    }
    assert after["alertmanager"] != before["alertmanager"]
    assert {k: v for k, v in after.items() if k != "alertmanager"} == {
        k: v for k, v in before.items() if k != "alertmanager"
    }


def test_revive_starts_again_only_the_dead_taskmanager_and_it_registers(local_stack):
    """What `cdr stream start` does before submitting: a TaskManager that stopped (as Flink stops
    one after a fatal task error) is started again, the JobManager left running."""
    before = {r.name: r.pid for r in local_stack.store.all()}
    os.kill(before["flink-taskmanager"], signal.SIGTERM)  # an orderly exit: it deregisters
    deadline = time.monotonic() + 60
    while is_alive(local_stack.store.get("flink-taskmanager")) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert local_stack.revive("flink") == ["flink-taskmanager"]
    after = {r.name: r.pid for r in local_stack.store.all()}
    assert after["flink-jobmanager"] == before["flink-jobmanager"]
    assert after["flink-taskmanager"] != before["flink-taskmanager"]
    overview = requests.get(f"http://127.0.0.1:{local_stack.settings.flink.rest_port}/overview", timeout=5).json()
    assert overview["taskmanagers"] == 1 and overview["slots-available"] >= 1
    assert local_stack.revive("flink") == []  # nothing left to start


# --- data survives down + up ----------------------------------------------------------------------

HIVE_TABLE = "stack_tests.restart_{suffix}"


def _write_everything(local_stack: Stack, suffix: str) -> dict[str, object]:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from pyhive import hive

    from stack.services.postgres import connect

    settings = local_stack.settings
    topic, group = f"stack-test-restart-{suffix}", f"stack-test-restart-{suffix}"
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap, "acks": "all"})
    for i in range(3):
        producer.produce(topic, f"message-{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    first = None
    while first is None:
        message = consumer.poll(1.0)
        first = message if message is not None and message.error() is None else None
    consumer.commit(message=first, asynchronous=False)  # offset 1 committed
    consumer.close()

    hdfs_path = f"{settings.hdfs.root}/tests/restart-{suffix}.txt"
    url = f"http://127.0.0.1:{settings.hdfs.namenode_http_port}/webhdfs/v1{hdfs_path}"
    redirect = requests.put(
        url, params={"op": "CREATE", "user.name": getpass.getuser()}, allow_redirects=False, timeout=10
    )
    requests.put(redirect.headers["Location"], data=f"kept {suffix}".encode(), timeout=10).raise_for_status()

    table = HIVE_TABLE.format(suffix=suffix)
    with hive.connect("127.0.0.1", settings.hive.thrift_port, username="stack-test") as conn:
        cursor = conn.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS stack_tests")
        cursor.execute(f"CREATE TABLE {table} (id INT, label STRING) USING parquet")
        cursor.execute(f"INSERT INTO {table} VALUES (1, 'kept'), (2, '{suffix}')")

    with connect(settings, settings.postgres.serving_db) as conn:
        conn.execute(f"CREATE TABLE stack_test_restart_{suffix} (note TEXT)")
        conn.execute(f"INSERT INTO stack_test_restart_{suffix} VALUES ('kept {suffix}')")
    return {"topic": topic, "group": group, "hdfs_url": url, "table": table}


def _read_everything(local_stack: Stack, suffix: str, written: dict[str, object]) -> dict[str, object]:
    from confluent_kafka import Consumer, TopicPartition
    from pyhive import hive

    from stack.services.postgres import connect

    settings = local_stack.settings
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap, "group.id": written["group"], "enable.auto.commit": False}
    )
    committed = consumer.committed([TopicPartition(written["topic"], 0)], timeout=30)[0].offset
    consumer.assign([TopicPartition(written["topic"], 0, 0)])
    messages = []
    deadline = time.monotonic() + 30
    while len(messages) < 3 and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            messages.append(message.value().decode())
    consumer.close()

    hdfs_text = requests.get(
        written["hdfs_url"], params={"op": "OPEN", "user.name": getpass.getuser()}, timeout=10
    ).text
    with hive.connect("127.0.0.1", settings.hive.thrift_port, username="stack-test") as conn:
        cursor = conn.cursor()
        cursor.execute(f"SELECT id, label FROM {written['table']} ORDER BY id")
        hive_rows = cursor.fetchall()
    with connect(settings, settings.postgres.serving_db) as conn:
        pg_rows = conn.execute(f"SELECT note FROM stack_test_restart_{suffix}").fetchall()
    return {"kafka": messages, "offset": committed, "hdfs": hdfs_text, "hive": hive_rows, "postgres": pg_rows}


@pytest.mark.stack
def test_down_then_up_keeps_kafka_hdfs_hive_and_postgres_data(local_stack):
    suffix = uuid.uuid4().hex[:8]
    written = _write_everything(local_stack, suffix)
    records = local_stack.store.all()

    down = _cli("down", timeout=300)
    assert down.returncode == 0, down.stderr
    assert not any(is_alive(record) for record in records)
    assert all(s.state == "down" for s in local_stack.status(probe=False))

    up = _cli("up", timeout=600)
    assert up.returncode == 0, up.stderr
    assert _read_everything(local_stack, suffix, written) == {
        "kafka": ["message-0", "message-1", "message-2"],
        "offset": 1,
        "hdfs": f"kept {suffix}",
        "hive": [(1, "kept"), (2, suffix)],
        "postgres": [(f"kept {suffix}",)],
    }


def test_every_process_spec_carries_its_identity_marker_in_its_command_line():
    """The marker must be in argv from the first exec (it is checked before any exec chain ends)."""
    from cdr.settings import get_settings

    stack = Stack(get_settings())
    try:
        specs = [spec for service in stack.services for spec in service.processes()]
    except CdrError as missing:  # jars or binaries not installed on this machine
        pytest.skip(str(missing))
    for spec in specs:
        assert spec.marker and spec.marker in " ".join(spec.argv), spec.name
    names = [spec.name for spec in specs]
    assert len(names) == len(set(names)) == 14  # with the optional Superset
