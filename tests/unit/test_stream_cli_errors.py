"""The speed layer's commands under the CLI's error policy (cdr/errors.py, docs/operations.md), run as
a user runs them: the real `cdr` entry point in a subprocess, every service it talks to pointed (by
the settings' environment overrides) at a local port nothing listens on. A closed port is a real
condition, not a mock: the clients, their time limits and the error handling are the real ones.

Each case: the exit code, no traceback, and stderr that is the policy's one `error:` line (and at
most one hint line) naming the problem. The cases run concurrently (each is mostly a Python start-up);
the producer's fail-fast case runs alone, since it is timed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CDR = [sys.executable, "-m", "cdr.cli"]
CONNECT_TIMEOUT_S = 2  # kafka.connect_timeout_s for these runs (default 10)
START_UP_MARGIN_S = 25  # a `cdr` start-up takes 2-6 s on a loaded 2-core machine


def _closed_port() -> int:
    """A local port nothing listens on: bound by the system, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {name: _closed_port() for name in ("kafka", "flink", "thrift", "namenode", "postgres")}


@pytest.fixture(scope="module")
def env(ports, tmp_path_factory) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CDR_")}  # no user config, no --debug
    return {
        **base,
        "CDR_STACK__HOME": str(tmp_path_factory.mktemp("stack-home")),  # lock and state files, if any
        "CDR_KAFKA__BROKER_PORTS": f"[{ports['kafka']}]",
        "CDR_KAFKA__CONNECT_TIMEOUT_S": str(CONNECT_TIMEOUT_S),
        "CDR_FLINK__REST_PORT": str(ports["flink"]),
        "CDR_HIVE__THRIFT_PORT": str(ports["thrift"]),
        "CDR_HDFS__NAMENODE_RPC_PORT": str(ports["namenode"]),
        "CDR_POSTGRES__PORT": str(ports["postgres"]),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Label files as `cdr stream score --labels` may be given them."""
    root = tmp_path_factory.mktemp("labels")
    good = {"scenario_id": "S1", "scenario": "sim_box", "entity_type": "subscriber", "entity_id": "213550000001",
            "start_time": "2025-12-31T10:00:00+00:00", "end_time": "2025-12-31T12:00:00+00:00"}
    lines = {
        "good": [good],
        "no_start": [good, {k: v for k, v in good.items() if k != "start_time"}],
        "not_json": ["{'scenario': 'sim_box'}"],
        "empty": [],
    }
    out = {}
    for name, rows in lines.items():
        out[name] = root / f"{name}.jsonl"
        out[name].write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    out["missing"] = root / "nothing-here.jsonl"
    out["labels_out"] = root / "out" / "labels.jsonl"
    out["no_dataset"] = root
    return out


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]  # substrings of stderr; {kafka}, {flink}, ... are the closed ports, {file} the files
    env: dict[str, str] = field(default_factory=dict)


BAD_INPUT, UNAVAILABLE = 2, 3
CASES = {
    # producer: arguments, before anything else
    "produce rate 0": Case(("produce", "--rate", "0"), BAD_INPUT, ("--rate must be a positive",)),
    "produce count -1": Case(("produce", "--count", "-1"), BAD_INPUT, ("--count must be at least 1",)),
    "produce start": Case(("produce", "--start", "2025-13-01"), BAD_INPUT, ("--start must be a date",)),
    # the generator's own checks, still before the cluster is asked (exit 2, not 3)
    "produce subscribers 5": Case(("produce", "--subscribers", "5", "--count", "1"), BAD_INPUT,
                                  ("--subscribers must be at least 100",)),
    "produce no dataset": Case(("produce", "--from-dataset", "{no_dataset}", "--count", "1"), BAD_INPUT,
                               ("holds no generated dataset",)),
    # topic names from settings
    "topic prefix": Case(("produce", "--count", "1"), BAD_INPUT, ("topics.prefix", "CDR_TOPICS__PREFIX", "'cdr voice.voice'"),
                         env={"CDR_TOPICS__PREFIX": "cdr voice."}),
    "topic dead letter": Case(("topics", "apply"), BAD_INPUT, ("topics.dead_letter",),
                              env={"CDR_TOPICS__DEAD_LETTER": "cdr.dead';--"}),
    "topic clash": Case(("stream", "start", "--job", "bronze"), BAD_INPUT, ("topics.prefix and topics.dead_letter",),
                        env={"CDR_TOPICS__DEAD_LETTER": "cdr.sms"}),
    # Kafka down
    "produce subscribers, no broker": Case(("produce", "subscribers", "--subscribers", "100"), UNAVAILABLE,
                                           ("no broker answered at 127.0.0.1:{kafka}",)),
    "topics list, no broker": Case(("topics", "list"), UNAVAILABLE, ("no broker answered at 127.0.0.1:{kafka}",)),
    # labels for scoring
    "score no start_time": Case(("stream", "score", "--dev-key", "--labels", "{no_start}"), BAD_INPUT,
                                ("{no_start}, line 2: missing start_time",)),
    "score not json": Case(("stream", "score", "--dev-key", "--labels", "{not_json}"), BAD_INPUT,
                           ("{not_json}, line 1: not JSON",)),
    "score empty": Case(("stream", "score", "--dev-key", "--labels", "{empty}"), BAD_INPUT, ("{empty} holds no labels",)),
    "score missing": Case(("stream", "score", "--dev-key", "--labels", "{missing}"), BAD_INPUT, ("no labels at {missing}",)),
    "score, no PostgreSQL": Case(("stream", "score", "--dev-key", "--labels", "{good}"), UNAVAILABLE,
                                 ("PostgreSQL", "{postgres}")),
    # Flink, the Thrift server and HDFS down
    "status": Case(("stream", "status"), UNAVAILABLE, ("Flink's REST API is unreachable at http://127.0.0.1:{flink}",
                                                       "CDR_FLINK__REST_PORT")),
    "stop": Case(("stream", "stop"), UNAVAILABLE, ("Flink's REST API is unreachable at http://127.0.0.1:{flink}",)),
    "tables": Case(("stream", "tables"), UNAVAILABLE, ("Spark Thrift Server is unreachable at 127.0.0.1:{thrift}",
                                                       "CDR_HIVE__THRIFT_PORT")),
    "compact": Case(("stream", "compact"), UNAVAILABLE, ("the HDFS NameNode is unreachable at 127.0.0.1:{namenode}",
                                                         "CDR_HDFS__NAMENODE_RPC_PORT")),
    # Flink job arguments
    "start unknown job": Case(("stream", "start", "--job", "nope"), BAD_INPUT, ("unknown job nope",)),
}


def _fill(text: str, ports: dict[str, int], files: dict[str, Path]) -> str:
    return text.format(**ports, **{k: str(v) for k, v in files.items()})


def _run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    began = time.monotonic()
    done = subprocess.run([*CDR, *args], env=env, capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - began


@pytest.fixture(scope="module")
def results(ports, env, files) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run, [_fill(a, ports, files) for a in case.args], {**env, **case.env})
                   for name, case in CASES.items()}
        return {name: future.result()[0] for name, future in futures.items()}


def _assert_policy(done: subprocess.CompletedProcess, code: int, says: list[str]) -> None:
    report = f"exit {done.returncode}\nstderr:\n{done.stderr}"
    assert done.returncode == code, report
    assert "Traceback" not in done.stderr, report
    lines = done.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), report
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  ")), report  # one line, one hint
    for text in says:
        assert text in done.stderr, report


@pytest.mark.parametrize("name", list(CASES))
def test_expected_failures_are_one_line_and_their_exit_code(name, results, ports, files):
    case = CASES[name]
    _assert_policy(results[name], case.code, [_fill(s, ports, files) for s in case.says])


def test_the_producer_fails_fast_when_no_broker_answers(ports, env, files):
    """Before: 60 s, "0 records acknowledged ... (44,290/s), 0 errors", exit 0. Now: exit 3 within the
    connect timeout (plus start-up), nothing sent, no labels written."""
    done, took = _run(["produce", "--count", "10", "--subscribers", "100", "--no-metrics",
                       "--labels-out", str(files["labels_out"])], env)
    _assert_policy(done, UNAVAILABLE, [f"no broker answered at 127.0.0.1:{ports['kafka']} within {CONNECT_TIMEOUT_S} s",
                                       "Connection refused", "CDR_KAFKA__BROKER_PORTS"])
    assert CONNECT_TIMEOUT_S <= took < CONNECT_TIMEOUT_S + START_UP_MARGIN_S, took
    assert not files["labels_out"].exists()


# --- the label reader behind `cdr stream score`, in-process: the cases the table does not repeat ---


GOOD = {"scenario_id": "S1", "scenario": "wangiri", "entity_type": "subscriber", "entity_id": "213550000001",
        "start_time": "2025-12-31T10:00:00", "end_time": "2025-12-31T12:00:00+01:00"}


@pytest.mark.parametrize("row, says", [
    ({**GOOD, "end_time": "yesterday"}, "line 1: end_time 'yesterday' is not an ISO 8601 time"),
    ({**GOOD, "start_time": 1767175200}, "line 1: start_time 1767175200 is not a time"),
    ({**GOOD, "scenario": "alien_invasion"}, "line 1: unknown scenario 'alien_invasion'"),
    ({k: v for k, v in GOOD.items() if k not in ("entity_id", "end_time")}, "line 1: missing entity_id, end_time"),
    (["a", "list"], "line 1: a JSON list, not an object"),
])
def test_label_lines_that_are_not_labels_are_bad_input_naming_file_and_line(tmp_path, row, says):
    from cdr.errors import BadInput
    from streaming.alerts import read_labels

    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(BadInput, match="^labels " + str(path).replace(".", r"\.")) as err:
        read_labels(path)
    assert says in str(err.value)


def test_labels_read_back_with_utc_times(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from cdr.errors import BadInput
    from streaming.alerts import read_labels

    path = tmp_path / "labels.jsonl"
    path.write_text("\n" + json.dumps(GOOD) + "\n\n")  # blank lines are skipped
    [label] = read_labels(path)
    utc = dt.timezone.utc
    assert label["start_time"] == dt.datetime(2025, 12, 31, 10, tzinfo=utc)  # no zone: UTC
    assert label["end_time"] == dt.datetime(2025, 12, 31, 11, tzinfo=utc)
    table = pa.table({k: [v] for k, v in GOOD.items() if k != "scenario_id"})
    pq.write_table(table, tmp_path / "scenarios.parquet")
    with pytest.raises(BadInput, match="has no column scenario_id"):
        read_labels(tmp_path / "scenarios.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(BadInput, match="is not a readable Parquet file"):
        read_labels(tmp_path / "broken.parquet")
