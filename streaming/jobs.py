"""Submitting, listing and stopping the speed layer's Flink jobs on the stack's session cluster.

Jobs are submitted with the Flink CLI of the PyFlink distribution (``flink run -d -py``) in
the stack's client environment, so SQL planning finds the connectors the cluster has. They are
found again by name through the REST API. Stopping takes a savepoint; a job cancelled or failed
keeps its latest checkpoint. The next start resumes from the newer of the two (and, with
neither, from the Kafka offsets committed at each checkpoint).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx

from cdr.errors import BadInput, ServiceUnavailable
from cdr.settings import REPO_ROOT, Settings
from streaming.flink.bronze import source_topics as bronze_topics
from streaming.topics import cdr_topic_names, partition_offsets


@dataclass(frozen=True)
class JobSpec:
    name: str
    script: Path
    pseudonymises: bool  # reads the key and the cell reference (the detection job)
    settings_section: str  # its section of the settings (checkpoint interval)
    topics: Callable[[Settings], list[str]]  # what its Kafka source reads


JOBS = {
    "bronze": JobSpec("cdr-bronze", REPO_ROOT / "streaming" / "flink" / "bronze_job.py", False, "bronze",
                      bronze_topics),
    "detection": JobSpec("cdr-detection", REPO_ROOT / "streaming" / "flink" / "detection_job.py", True, "detection",
                         cdr_topic_names),
}


@dataclass(frozen=True)
class JobState:
    name: str
    job_id: str
    state: str
    start_time_ms: int


def _rest(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.flink.rest_port}"


def _state_file(settings: Settings) -> Path:
    return settings.stack.home_dir / "flink" / "stream-jobs.json"


REST_HINT = "is the stack up? (cdr stack status); the port is flink.rest_port (CDR_FLINK__REST_PORT)"


def _call(settings: Settings, method: str, path: str, timeout: float = 5, **kw) -> httpx.Response:
    """A request to Flink's REST API; ServiceUnavailable when it does not answer, or answers an error."""
    try:
        response = httpx.request(method, f"{_rest(settings)}{path}", timeout=timeout, **kw)
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise ServiceUnavailable(f"Flink's REST API answered {exc.response.status_code} to {method} {path}",
                                 f"see the Flink UI at {_rest(settings)}") from None
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"Flink's REST API is unreachable at {_rest(settings)} ({exc})", REST_HINT) from None
    return response


def list_jobs(settings: Settings) -> list[JobState]:
    jobs = _call(settings, "GET", "/jobs/overview").json()["jobs"]
    names = {spec.name for spec in JOBS.values()}
    return [JobState(j["name"], j["jid"], j["state"], j["start-time"]) for j in jobs if j["name"] in names]


def running(settings: Settings, job: str) -> JobState | None:
    name = JOBS[job].name
    return next((j for j in list_jobs(settings) if j.name == name and j.state in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING")), None)


SERVING_TABLES = ("alerts", "kpi_cell_minute", "kpi_service_minute", "late_records")


def late_records(settings: Settings) -> list[tuple]:
    """(event day, record type, records) the detection job's windows dropped as late (late_records)."""
    import psycopg

    apply_serving_schema(settings)
    pg = settings.postgres
    with psycopg.connect(host="127.0.0.1", port=pg.port, user=pg.user, dbname=pg.serving_db, autocommit=True) as conn:
        return conn.execute("SELECT day, record_type, sum(records)::BIGINT FROM late_records GROUP BY 1, 2"
                            " ORDER BY 1, 2").fetchall()


def truncate_serving_tables(settings: Settings) -> None:
    import psycopg

    apply_serving_schema(settings)
    pg = settings.postgres
    with psycopg.connect(host="127.0.0.1", port=pg.port, user=pg.user, dbname=pg.serving_db, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(SERVING_TABLES)}")


def apply_serving_schema(settings: Settings) -> None:
    """The speed layer's tables and the serving layer's schema over them (serving/schema.sql)."""
    from serving.store import apply_schema

    apply_schema(settings)


def write_cells(table, path: Path, neighbours: int) -> Path:
    """The cell reference the detection job reads: id, position, and reach_km, the distance to
    farthest of the ``neighbours`` nearest cells of the same operator (itself included, as the generator counts) (how far a subscriber served by the
    cell normally moves: a few km in cities, hundreds in the Sahara)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cdr.geo import haversine_km

    path.parent.mkdir(parents=True, exist_ok=True)
    lat = table.column("latitude").to_numpy()
    lon = table.column("longitude").to_numpy()
    operator = np.asarray(table.column("operator").cast(pa.string()).to_pylist(), dtype=object)
    radio = np.isin(np.asarray(table.column("technology").cast(pa.string()).to_pylist(), dtype=object),
                    ["2G", "3G", "4G", "5G"])
    reach = np.zeros(len(lat))
    for op in set(operator[radio]):
        idx = np.flatnonzero(radio & (operator == op))
        k = min(neighbours - 1, len(idx) - 1)
        for i in idx:
            d = haversine_km(lat[i], lon[i], lat[idx], lon[idx])
            reach[i] = np.partition(d, k)[k]
    pq.write_table(pa.table({"cell_id": table.column("cell_id").cast(pa.string()), "latitude": lat,
                             "longitude": lon, "reach_km": reach}), path)
    return path


def load_cell_reference(settings: Settings, cells: Path) -> int:
    """Replace the serving database's ``cell_reference`` (the detection job's lookup table) with the
    cells file ``write_cells`` wrote, in one transaction; returns the number of cells."""
    import psycopg
    import pyarrow.parquet as pq

    rows = pq.read_table(cells, columns=["cell_id", "latitude", "longitude", "reach_km"]).to_pylist()
    pg = settings.postgres
    with psycopg.connect(host="127.0.0.1", port=pg.port, user=pg.user, dbname=pg.serving_db) as conn:
        conn.execute("DELETE FROM cell_reference")
        with conn.cursor().copy("COPY cell_reference (cell_id, latitude, longitude, reach_km) FROM STDIN") as copy:
            for r in rows:
                copy.write_row((r["cell_id"], r["latitude"], r["longitude"], r["reach_km"]))
    return len(rows)


def start(settings: Settings, job: str, key: bytes | None = None, cells: Path | None = None, parallelism: int = 1,
          fresh: bool = False, timeout_s: float = 300, group_id: str | None = None,
          allow_state_loss: bool = False) -> JobState:
    """Submit ``job`` unless it runs already; resume from the last savepoint unless ``fresh``
    (then with a new consumer group: ``group_id``, or one named after the job and the time).
    A resume whose state no longer maps onto the job's plan (the job's SQL changed) is refused,
    naming the operators whose state would be lost, unless ``allow_state_loss``.
    Returns once every task of the job runs, so records sent from then on are read at once.
    The detection job needs the pseudonymisation ``key`` and the ``cells`` reference. Compiling the
    detection job's plan takes the client about a minute on an idle 2-core machine, and over two
    while a whole container stack starts beside it: hence the timeout. A job that runs is pushed to
    the Pushgateway as expected to run (cdr_stream_job_expected), until ``stop``."""
    from cdr.pushgateway import push_stream_job_expected
    from stack.services.flink import client_env, pyflink_home
    from streaming.topics import check_topic_names

    check_topic_names(settings)  # the job pastes them into its SQL: BadInput before anything is submitted
    _ensure_taskmanager(settings)
    current = running(settings, job)
    if current:
        push_stream_job_expected(settings, current.name)
        return current
    spec = JOBS[job]
    restore = None if fresh else resume_point(settings, job)
    # A job keeps its consumer group across restarts: the offsets it commits at each checkpoint
    # are where it resumes without a savepoint or checkpoint, and what wait_caught_up reads.
    group = group_id or (f"{spec.name}-{int(time.time())}" if fresh else consumer_group(settings, job))
    args = [str(pyflink_home(settings) / "bin" / "flink"), "run", "-d", "-py", str(spec.script)]
    if restore:
        args += ["-s", str(restore)] + (["--allowNonRestoredState"] if allow_state_loss else [])
    args += ["--parallelism", str(parallelism), "--group-id", group]
    key_path = None
    if spec.pseudonymises:
        if key is None or cells is None:
            raise BadInput(f"the {job} job needs the pseudonymisation key and the cell reference")
        apply_serving_schema(settings)
        load_cell_reference(settings, cells)
        # The key goes through a private file the job deletes on reading, never the command line.
        fd, key_path = tempfile.mkstemp(prefix="cdr-key-", dir=settings.stack.home_dir / "flink" / "tmp")
        os.write(fd, key)
        os.close(fd)
        args += ["--key-file", key_path]
    args += ["--checkpoint-interval", f"{getattr(settings, spec.settings_section).checkpoint_interval_s} s"]
    if job == "detection":
        args += ["--idle-timeout", f"{settings.detection.source_idle_timeout_s} s"]
    env = {**os.environ, **client_env(settings), "PYTHONPATH": str(REPO_ROOT)}
    try:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout_s)
    finally:
        if key_path:
            Path(key_path).unlink(missing_ok=True)
    if proc.returncode != 0:
        # The client's whole output goes to a file; the error names its cause: the last exception
        # line (the Python traceback's or the Java cause's), without the Java stack frames.
        log = settings.stack.home_dir / "flink" / f"submit-{job}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout + proc.stderr)
        lines = [line.strip() for line in (proc.stdout + proc.stderr).strip().splitlines()
                 if line.strip() and not line.lstrip().startswith("at ")]
        causes = [line for line in lines if re.search(r"(Exception|Error)\b", line)]
        cause = (causes or lines or [f"exit status {proc.returncode}"])[-1]
        _refuse_state_loss(spec.name, restore, proc.stdout + proc.stderr)
        raise ServiceUnavailable(f"flink run failed for {spec.name}: {cause[:300]}", f"the client's output: {log}")
    submitted = re.search(r"JobID ([0-9a-f]{32})", proc.stdout + proc.stderr)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if submitted and restore:   # a restore that fails does so while the job initialises
            status = _call(settings, "GET", f"/jobs/{submitted.group(1)}").json()
            if status["state"] == "FAILED":
                root = _call(settings, "GET", f"/jobs/{submitted.group(1)}/exceptions").json()
                _refuse_state_loss(spec.name, restore, str(root.get("root-exception", "")))
        current = running(settings, job)
        if current and current.state == "RUNNING":
            # This run's checkpoints are where a restart after a cancel or failure resumes; a
            # fresh start forgets the savepoint of the runs before it.
            _remember(settings, job, run=current.job_id, group=group, **({"savepoint": None} if fresh else {}))
            _wait_tasks_running(settings, current.job_id, deadline - time.monotonic())
            push_stream_job_expected(settings, current.name)
            return current
        time.sleep(1)
    raise ServiceUnavailable(f"{spec.name} was submitted but is not RUNNING after {timeout_s:.0f} s",
                             f"see the Flink UI at {_rest(settings)}")


UNMAPPED_STATE = re.compile(r"Cannot map checkpoint/savepoint state for operator ([0-9a-f]{32})")


def _refuse_state_loss(name: str, restore: Path | None, output: str) -> None:
    """BadInput naming the operators whose state ``restore`` holds and the new plan lacks, when
    Flink refused the restore for that reason (it names one operator per attempt)."""
    operators = sorted(set(UNMAPPED_STATE.findall(output)))
    if restore and operators:
        raise BadInput(
            f"{name}'s plan changed since {restore}: the state of operator {', '.join(operators)} cannot be "
            "restored into it (the open windows' records, alerts and KPIs would be lost)",
            "`cdr stream start --allow-state-loss` resumes without that state (every operator that still "
            "matches keeps its own); `cdr stream start --fresh` starts over from the start of the topics")


def _ensure_taskmanager(settings: Settings, timeout_s: float = 60) -> None:
    """Wait for a TaskManager, starting the local stack's again if it has died. Cancelling a
    PyFlink job now and then takes the whole TaskManager down: Beam's Python runner fails a
    cancelled task's clean-up ("Reference count must not be negative"), which Flink treats as
    fatal. A job submitted to a cluster without one waits for slots until its start times out."""
    deadline = time.monotonic() + timeout_s
    while not _revive_taskmanager(settings) and _taskmanagers(settings) == 0:  # one exiting, or starting
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"no TaskManager has registered with Flink for {timeout_s:.0f} s",
                                     f"see the Flink UI at {_rest(settings)}; cdr stack status")
        time.sleep(1)


def _revive_taskmanager(settings: Settings) -> bool:
    """Start the local stack's TaskManager again if its process has died; whether it did (a
    container stack restarts its own)."""
    from stack.lifecycle import Stack

    return bool(Stack(settings).revive("flink"))


def _taskmanagers(settings: Settings) -> int:
    return _call(settings, "GET", "/overview").json()["taskmanagers"]


def stop(settings: Settings, job: str, savepoint: bool = True, timeout_s: float = 120) -> str | None:
    """Stop with a savepoint (or cancel); returns the savepoint path, if any. Once Flink answers,
    the job is no longer expected to run: its cdr_stream_job_expected group leaves the Pushgateway,
    whether it ran or not."""
    from cdr.pushgateway import forget_stream_job

    current = running(settings, job)
    forget_stream_job(settings, JOBS[job].name)
    if current is None:
        return None
    base = f"/jobs/{current.job_id}"
    if not savepoint:
        _call(settings, "PATCH", f"{base}?mode=cancel", timeout=10)
        _wait_gone(settings, job, timeout_s)
        return None
    trigger = _call(settings, "POST", f"{base}/stop", timeout=10, json={"drain": False})
    request_id = trigger.json()["request-id"]
    deadline = time.monotonic() + timeout_s
    cancel_hint = ("cancel it without a savepoint: cdr stream stop --cancel (the next start resumes from its "
                   "latest checkpoint)")
    while time.monotonic() < deadline:
        status = _call(settings, "GET", f"{base}/savepoints/{request_id}", timeout=10).json()
        if status["status"]["id"] == "COMPLETED":
            op = status.get("operation", {})
            if "failure-cause" in op:
                trace = op["failure-cause"].get("stack-trace", "").strip().splitlines()
                raise ServiceUnavailable(f"stop with savepoint failed for {current.name}: "
                                         f"{trace[0][:300] if trace else 'no cause given'}", cancel_hint)
            location = op["location"]
            _remember(settings, job, savepoint=location)
            _wait_gone(settings, job, timeout_s)
            return location
        time.sleep(1)
    raise ServiceUnavailable(f"no savepoint of {current.name} after {timeout_s:.0f} s", cancel_hint)


def forget_savepoints(settings: Settings) -> None:
    """The next start reads from the committed offsets (or the start), not from a savepoint or a
    retained checkpoint."""
    _state_file(settings).unlink(missing_ok=True)


def _wait_gone(settings: Settings, job: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while running(settings, job) and time.monotonic() < deadline:
        time.sleep(0.5)


def _load_state(settings: Settings) -> dict:
    path = _state_file(settings)
    return json.loads(path.read_text()) if path.is_file() else {}


def _state_key(settings: Settings, job: str) -> str:
    """A job's state belongs to the topics it reads: a benchmark's or a test's run of the same job
    on its own topics must not become the resume point of the platform's."""
    return f"{job}@{settings.topics.prefix}"


def _remember(settings: Settings, job: str, **fields: str | None) -> None:
    state = _load_state(settings)
    entry = {**state.get(_state_key(settings, job), {}), **fields}
    state[_state_key(settings, job)] = {k: v for k, v in entry.items() if v is not None}
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(state, indent=2))
    staged.replace(path)  # a crash mid-write leaves the previous state, not half a file


def consumer_group(settings: Settings, job: str) -> str:
    """The Kafka consumer group of ``job``'s current or last run (the job's name before any run)."""
    return _load_state(settings).get(_state_key(settings, job), {}).get("group", JOBS[job].name)


def resume_point(settings: Settings, job: str) -> Path | None:
    """Where the next start of ``job`` resumes: the newer of its last savepoint and the latest
    checkpoint its last run retained (checkpoints are kept when a job is cancelled or fails),
    or None. A checkpoint still being written has no ``_metadata`` yet and is not a candidate."""
    from stack.services.flink import checkpoints_dir

    entry = _load_state(settings).get(_state_key(settings, job), {})
    candidates = []
    if entry.get("savepoint"):
        candidates.append(Path(entry["savepoint"].removeprefix("file:")))
    if entry.get("run"):
        candidates += (checkpoints_dir(settings) / entry["run"]).glob("chk-*")
    complete = [c for c in candidates if (c / "_metadata").is_file()]
    return max(complete, key=lambda c: (c / "_metadata").stat().st_mtime) if complete else None


# The detection job's own counters (streaming/flink/udfs.py), and the key of the key-value metric
# group each is counted under (None: one counter per operator).
JOB_COUNTERS = {"records_valid": None, "records_dead_lettered": "reason", "alerts_raised": "scenario",
                "records_ahead_of_clock": None}


def counter_sums(metrics: list[dict]) -> dict[str, dict[str, float]]:
    """Flink REST subtask metrics (``[{"id": ..., "sum": ...}]``) -> counter -> label value -> sum
    over subtasks ('' for an unlabelled counter). A counter in a key-value group has an id ending
    ``<key>.<value>.<counter>`` (e.g. ``...cdr.reason.wrong_type.records_dead_lettered``)."""
    out: dict[str, dict[str, float]] = {}
    for m in metrics:
        parts = m["id"].split(".")
        name = parts[-1]
        if name not in JOB_COUNTERS:
            continue
        key = JOB_COUNTERS[name]
        label = parts[-2] if key is not None and len(parts) >= 3 and parts[-3] == key else ""
        by_label = out.setdefault(name, {})
        by_label[label] = by_label.get(label, 0) + m.get("sum", 0)
    return out


def job_counters(settings: Settings, job_id: str) -> dict[str, dict[str, float]]:
    """The job's own counters, summed over subtasks, per label value: records valid, records
    dead-lettered per reason (rule code) and alerts raised per scenario (``counter_sums``)."""
    base = f"/jobs/{job_id}"
    found: list[dict] = []
    for v in _call(settings, "GET", base).json()["vertices"]:
        names = _call(settings, "GET", f"{base}/vertices/{v['id']}/subtasks/metrics").json()
        wanted = [m["id"] for m in names if m["id"].rsplit(".", 1)[-1] in JOB_COUNTERS]
        if wanted:
            found += _call(settings, "GET", f"{base}/vertices/{v['id']}/subtasks/metrics",
                           params={"get": ",".join(wanted)}).json()
    return counter_sums(found)


def job_metrics(settings: Settings, job_id: str) -> dict[str, float]:
    """The job's own counters, summed over subtasks and labels: records valid and dead-lettered
    (together, every message the job has read) and alerts raised (over all scenarios)."""
    return {name: sum(by_label.values()) for name, by_label in job_counters(settings, job_id).items()}


def _wait_tasks_running(settings: Settings, job_id: str, timeout_s: float) -> None:
    """A job is RUNNING once scheduled, while its tasks may still be deploying (and the detection
    job's Python workers starting): a job that has started reads its topics."""
    deadline = time.monotonic() + timeout_s
    next_revival = time.monotonic() + 5
    while time.monotonic() < deadline:
        vertices = _call(settings, "GET", f"/jobs/{job_id}").json()["vertices"]
        if vertices and all(v["status"] == "RUNNING" for v in vertices):
            return
        # The TaskManager may die just after a submission (the previous job's cancel takes it
        # down a few seconds later, see _ensure_taskmanager): the job then waits for slots.
        if time.monotonic() > next_revival:
            _revive_taskmanager(settings)
            next_revival = time.monotonic() + 5
        time.sleep(0.5)
    raise ServiceUnavailable(f"the tasks of job {job_id} are not all RUNNING after the start timeout",
                             f"see the Flink UI at {_rest(settings)}")


def wait_caught_up(settings: Settings, job: str, timeout_s: float) -> bool:
    """Wait until ``job`` has committed offsets at the end of every partition of its topics (as
    they are when called). Its Kafka source commits offsets once a checkpoint has completed, so
    for the bronze landing every message produced before the call is then in a committed file.
    False on timeout, or if the job is not running."""
    topics = JOBS[job].topics(settings)
    target = partition_offsets(settings, topics)
    deadline = time.monotonic() + timeout_s
    while running(settings, job):
        committed = partition_offsets(settings, topics, group=consumer_group(settings, job))
        if all(committed.get(tp, 0) >= end for tp, end in target.items()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return False
