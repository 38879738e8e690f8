"""The container stack as a whole: every service healthy, every Prometheus target up, Alertmanager
accepting alerts, and the clear errors of `make up` on bad input."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time

import requests

from tests.compose.conftest import REPO, compose


def test_every_service_is_healthy_and_every_one_shot_succeeded(container_stack):
    services = compose.render(container_stack.env, compose.PROFILES)["services"]
    states = container_stack.stack.containers()
    problems = []
    for name, spec in services.items():
        state = states.get(name, {})
        if compose.is_one_shot(spec):
            if (state.get("status"), state.get("exit_code")) != ("exited", 0):
                problems.append(f"{name}: {state}")
        elif name != "producer" and state.get("health") != "healthy":   # the stream test stops the producer
            problems.append(f"{name}: {state}")
    assert not problems, problems


def test_every_always_on_prometheus_target_is_up(container_stack):
    url = f"http://127.0.0.1:{container_stack.env.get('PROMETHEUS_PORT') or 9090}/api/v1/targets"
    expected = set(compose.JOB_SERVICES) - {"cdr-producer"}
    deadline = time.monotonic() + 90   # a target is scraped every 10 s
    while True:
        targets = requests.get(url, timeout=10).json()["data"]["activeTargets"]
        always_on = [t for t in targets if t["labels"].get("availability") == "always-on"]
        down = [f"{t['labels']['job']} {t['labels']['instance']}: {t['health']} {t['lastError']}"
                for t in always_on if t["health"] != "up"]
        jobs = {t["labels"]["job"] for t in always_on}
        if (not down and jobs == expected) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not down, down
    assert jobs == expected


def test_alertmanager_accepts_an_alert_and_lists_it(container_stack):
    url = f"http://127.0.0.1:{container_stack.env.get('ALERTMANAGER_PORT') or 9093}/api/v2/alerts"
    name = f"ComposeSuiteProbe{int(time.time())}"
    now = dt.datetime.now(dt.timezone.utc)
    alert = {"labels": {"alertname": name, "severity": "info", "platform": "cdr"},
             "annotations": {"summary": "posted by tests/compose"},
             "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=5)).isoformat()}
    assert requests.post(url, json=[alert], timeout=10).status_code == 200
    listed = requests.get(url, params={"filter": f'alertname="{name}"'}, timeout=10).json()
    assert [a["labels"]["alertname"] for a in listed] == [name]


def _up(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "compose" / "compose.py"), "up", "--no-build"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_an_empty_secret_stops_up_naming_the_variable(container_stack):
    done = _up(POSTGRES_PASSWORD="")
    assert done.returncode == 2
    assert "POSTGRES_PASSWORD" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_taken_host_port_stops_up_naming_the_port_and_its_process(container_stack):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = _up(JUPYTER_PORT=str(port))
    assert done.returncode == 2
    assert f"port {port} (jupyter) is in use by " in done.stderr and f"pid {os.getpid()})" in done.stderr, done.stderr
    # Nothing was changed: JupyterLab still runs on its own port.
    assert container_stack.stack.containers()["jupyter"]["health"] == "healthy"


def test_no_engine_is_one_sentence_with_the_way_out():
    done = subprocess.run([sys.executable, str(REPO / "compose" / "compose.py"), "up"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COMPOSE": "no-such-compose"})
    assert done.returncode == 2
    assert "No working container engine" in done.stderr and "make up-local" in done.stderr and "make engine" in done.stderr
    assert "Traceback" not in done.stderr


def test_make_smoke_passes_on_the_running_stack(container_stack):
    """`make smoke`: a record through the three brokers, a table through the Thrift Server, the Flink
    jobs RUNNING, every Prometheus job of the running services up."""
    assert compose.main(["smoke"]) == 0
