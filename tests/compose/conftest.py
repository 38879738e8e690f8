"""The container stack, shared by every test of this package: one `make up`, one dataset.

These tests run in `make test-compose` (called by `make test` after the local-stack suite, with the
local stack stopped first: both stacks claim the same host ports). They need a container engine;
`make engine` installs one on Debian. No engine is a failure, not a skip. The stack stays up
afterwards (`make down` stops it), so a second run reuses it and only rebuilds what changed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cdr_compose", REPO / "compose" / "compose.py")
compose = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compose)

# The dataset of this suite (in the stack's datasets volume): small, so that the suite stays within CI's budget.
DATASET = "data/compose-e2e"
SUBSCRIBERS = 2000
DAYS = 1
STREAM_SUBSCRIBERS = 2000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/compose/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.compose)


@dataclass
class ContainerStack:
    env: dict[str, str]
    stack: object = field(repr=False)

    def cdr(self, *args: str, timeout: float = 1800, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`cdr ARGS` in a one-shot container of the platform image (compose.py cdr), with ``env``
        added to its environment."""
        variables = [option for name, value in (env or {}).items() for option in ("-e", f"{name}={value}")]
        done = subprocess.run([*self.stack.argv("run", "--rm", "--no-deps", "-T", *variables, "cdr", "cdr", *args,
                                                 profiles=("tools",))],
                              cwd=compose.HERE, capture_output=True, text=True, timeout=timeout)
        print(f"$ cdr {' '.join(args)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        if check:
            assert done.returncode == 0, f"cdr {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}"
        return done

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(self.stack.argv(*args), cwd=compose.HERE, capture_output=True, text=True,
                              timeout=timeout)

    def make(self, *args: str, timeout: float = 1800, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **env})

    @property
    def postgres_password(self) -> str:
        return self.env["POSTGRES_PASSWORD"]

    def psql(self, sql: str, dbname: str = "cdr_serving") -> list[tuple]:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=int(self.env.get("POSTGRES_PORT") or 5432), user="cdr",
                             password=self.postgres_password, dbname=dbname) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def hive(self, sql: str) -> list[tuple]:
        from pyhive import hive

        with hive.connect("127.0.0.1", int(self.env.get("HIVE_THRIFT_PORT") or 10000), username="compose-tests") as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []


def bring_up() -> ContainerStack:
    """`compose.py up` (builds the image from the layer cache, starts, waits for health)."""
    compose.find_engine()   # raises with the way out when there is none: a failure, not a skip
    if not compose.ENV_FILE.is_file():
        compose.generate_env_file()
    t0 = time.monotonic()
    code = compose.main(["up"])
    assert code == 0, "`make up` failed (its output above names the service and shows its logs)"
    print(f"container stack up in {time.monotonic() - t0:.0f} s")
    return ContainerStack(env=compose.project_env(), stack=compose.Compose(compose.PROFILES))


@pytest.fixture(scope="session")
def container_stack() -> ContainerStack:
    return bring_up()


@pytest.fixture(scope="session")
def batch_run(container_stack) -> ContainerStack:
    """The suite's labelled dataset, through the batch layer on the Spark cluster (once).

    CDR_COMPOSE_REUSE_BATCH=1 (development only: a second run against the same running stack) skips
    the run when the warehouse already holds the dataset's days; CI always runs it on a new stack."""
    if os.environ.get("CDR_COMPOSE_REUSE_BATCH") == "1":
        try:
            if container_stack.hive("SELECT count(DISTINCT date) FROM cdr_dw.fact_usage")[0][0] == DAYS:
                return container_stack
        except Exception:  # no warehouse yet: run it
            pass
    container_stack.cdr("generate", "--out", DATASET, "--subscribers", str(SUBSCRIBERS), "--days", str(DAYS),
                        "--overwrite")
    container_stack.cdr("batch", "run", "--input", DATASET)
    return container_stack


@pytest.fixture(scope="session")
def stream_run(container_stack) -> ContainerStack:
    """One day streamed through the running detection and bronze jobs, with labelled scenarios (once).
    The live producer is stopped first: its records would be other days of other subscribers."""
    done = container_stack.compose("stop", "producer")
    assert done.returncode == 0, done.stderr
    container_stack.cdr("stream", "reset", "--yes")
    container_stack.cdr("stream", "start", "--subscribers", str(STREAM_SUBSCRIBERS))
    container_stack.cdr("produce", "--days", "1", "--subscribers", str(STREAM_SUBSCRIBERS), "--rate", "20000",
                        "--clock", "accelerated:1440")
    _send_malformed(3)
    return container_stack


def _send_malformed(count: int) -> None:
    """A few unreadable messages from the host, through the brokers' host listeners: the detection
    job dead-letters them (and its dead-letter counter, which dashboards read, exists from then on)."""
    from confluent_kafka import Producer

    from cdr.settings import get_settings
    from streaming.topics import cdr_topic_names

    settings = get_settings()
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap, "acks": "all"})
    for _ in range(count):
        producer.produce(cdr_topic_names(settings)[0], b"not json at all")
    assert producer.flush(30) == 0, "malformed messages not acknowledged"
    # Rates over a minute need two scrapes of the new counter (every 10 s).
    import requests

    url = f"http://127.0.0.1:{settings.prometheus.port}/api/v1/query"
    query = "count_over_time(flink_taskmanager_job_task_operator_cdr_reason_records_dead_lettered[1m]) >= 2"
    deadline = time.monotonic() + 120
    while not requests.get(url, params={"query": query}, timeout=10).json()["data"]["result"]:
        assert time.monotonic() < deadline, "the detection job's dead-letter counter never reached Prometheus"
        time.sleep(5)
