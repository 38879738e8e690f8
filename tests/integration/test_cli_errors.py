"""The CLI's error policy on the real local stack (docs/operations.md): for each command and each
way its input or its services can be wrong, the documented exit code, one or two lines on stderr
that name the problem and no traceback, and every store the command touches exactly as before.

The stores are fingerprinted before and after each failing command: the HDFS zones (every path
under the platform's root with its length and modification time, through WebHDFS) and the Hive
metastore (every database, table and partition, from its PostgreSQL database).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.spark]
CDR = str(Path(sys.executable).parent / "cdr")
PREFIX = "errors_"


def _cdr(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([CDR, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CDR_DEV_PSEUDONYM_KEY": "1", **(env or {})})


def _hdfs_listing(settings) -> list[tuple]:
    """Every path under the platform's HDFS root with its type, length and modification time."""
    import requests

    base = f"http://127.0.0.1:{settings.hdfs.namenode_http_port}/webhdfs/v1"
    out, folders = [], [settings.hdfs.root.rstrip("/") or "/"]
    while folders:
        folder = folders.pop()
        answer = requests.get(f"{base}{folder}", params={"op": "LISTSTATUS", "user.name": "tests"}, timeout=30)
        if answer.status_code == 404:
            continue
        for entry in answer.json()["FileStatuses"]["FileStatus"]:
            path = f"{folder.rstrip('/')}/{entry['pathSuffix']}"
            out.append((path, entry["type"], entry["length"], entry["modificationTime"]))
            if entry["type"] == "DIRECTORY":
                folders.append(path)
    return sorted(out)


def _metastore(settings) -> list[tuple]:
    import psycopg

    pg = settings.postgres
    with psycopg.connect(host="127.0.0.1", port=pg.port, user=pg.user, dbname=pg.metastore_db) as conn:
        return conn.execute(
            'SELECT d."NAME", t."TBL_NAME", p."PART_NAME", s."LOCATION" FROM "DBS" d '
            'LEFT JOIN "TBLS" t ON t."DB_ID" = d."DB_ID" LEFT JOIN "PARTITIONS" p ON p."TBL_ID" = t."TBL_ID" '
            'LEFT JOIN "SDS" s ON s."SD_ID" = t."SD_ID" ORDER BY 1, 2, 3').fetchall()


def _fingerprint(settings) -> str:
    return hashlib.sha256(repr((_hdfs_listing(settings), _metastore(settings))).encode()).hexdigest()


def _assert_one_error(stderr: str, words: str) -> None:
    """The error is the last one or two lines, with no Python or Java trace anywhere (the JVM's own
    start-up lines, as "Using incubator modules", may come before it)."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and not any(line.startswith(("\tat ", "Caused by")) for line in lines), stderr
    error = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert len(lines) - error <= 2 and words in "\n".join(lines[error:]), stderr


@pytest.fixture(scope="module")
def good_dataset(tmp_path_factory) -> Path:
    from generator.dataset import GenerateOptions, generate_dataset

    return generate_dataset(GenerateOptions(out=tmp_path_factory.mktemp("errors") / "ds", subscribers=300, days=1,
                                            file_format="jsonl")).out


def _broken_copy(good: Path, folder: Path, change: str) -> Path:
    src = folder / "ds"
    shutil.copytree(good, src)
    day_folder = next((src / "cdr" / "record_type=voice").iterdir())
    match change:
        case "no-subscribers":
            shutil.rmtree(src / "subscribers")
        case "unknown-format":
            (day_folder / "calls.xlsx").write_bytes(b"PK\x03\x04")
        case "no-labels":
            shutil.rmtree(src / "labels")
    return src


# (case, extra args, expected exit code, words stderr must hold). Every broken layout is unit-tested
# in tests/unit/test_batch_preflight.py; here a few go through the command against the real stores
# (each starts a Spark application: about 20 s).
BATCH_RUN_CASES = [
    ("no-subscribers", [], 2, "has no subscribers/ folder"),
    ("unknown-format", [], 2, "calls.xlsx is not a data file"),
    ("good", ["--date", "2031-01-01"], 2, "holds no CDRs of 2031-01-01"),
    ("good", ["--date", "yesterday"], 2, "--date must be a date"),
    ("good", ["--db-prefix", "x'; DROP DATABASE cdr_dw; --"], 2, "--db-prefix"),
    ("good", ["--root", "hdfs://127.0.0.1:9000/a b"], 2, "--root"),
]


@pytest.mark.parametrize("case, extra, code, words", BATCH_RUN_CASES, ids=[f"{c[0]}{c[1][:1]}" for c in BATCH_RUN_CASES])
def test_batch_run_on_bad_input_names_it_and_writes_nothing(local_stack, good_dataset, tmp_path, case, extra,
                                                          code, words):
    src = good_dataset if case == "good" else _broken_copy(good_dataset, tmp_path, case)
    before = _fingerprint(local_stack.settings)
    done = _cdr("batch", "run", "--input", str(src), "--db-prefix", PREFIX, *extra)
    assert done.returncode == code, done.stderr
    _assert_one_error(done.stderr, words)
    assert _fingerprint(local_stack.settings) == before


@pytest.mark.parametrize("case, words", [("no-labels", "holds no labels")])
def test_batch_score_with_bad_labels_names_them(local_stack, good_dataset, tmp_path, case, words):
    src = _broken_copy(good_dataset, tmp_path, case)
    done = _cdr("batch", "score", "--labels", str(src), "--db-prefix", PREFIX)
    assert done.returncode == 2, done.stderr
    _assert_one_error(done.stderr, words)


def test_no_key_outside_development_is_refused_before_anything_is_written(local_stack, good_dataset):
    before = _fingerprint(local_stack.settings)
    env = {k: v for k, v in os.environ.items() if k not in ("CDR_DEV_PSEUDONYM_KEY", "CDR_PSEUDONYM_KEY")}
    done = subprocess.run([CDR, "batch", "run", "--input", str(good_dataset), "--db-prefix", PREFIX],
                          capture_output=True, text=True, timeout=600, env={**env, "CDR_ENVIRONMENT": "production"})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "key" in done.stderr
    assert _fingerprint(local_stack.settings) == before


def test_a_port_taken_by_another_process_is_named_with_exit_3(local_stack, tmp_path):
    """A second stack (its own home) whose PostgreSQL port is the running stack's."""
    home = tmp_path / "other-stack"
    home.mkdir()
    (home / "jars").symlink_to(local_stack.paths.jars)
    done = _cdr("stack", "up", env={"CDR_STACK__HOME": str(home)}, timeout=300)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "ports are taken" in done.stderr
    assert f"port {local_stack.settings.postgres.port}" in done.stderr


def test_status_of_a_stack_that_is_not_running_exits_3(tmp_path):
    done = _cdr("stack", "status", env={"CDR_STACK__HOME": str(tmp_path)}, timeout=120)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert "services are not running and ready: postgres, hdfs" in done.stderr
    assert "cdr stack up" in done.stderr


def test_batch_tables_with_the_metastore_unreachable_exits_3(local_stack):
    done = _cdr("batch", "tables", "--db-prefix", PREFIX, env={"CDR_POSTGRES__PORT": "1"}, timeout=600)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "unreachable" in done.stderr.lower(), done.stderr


def test_debug_shows_the_traceback(good_dataset):
    done = _cdr("--debug", "batch", "run", "--input", str(good_dataset), "--db-prefix", "a b")
    assert done.returncode != 0 and "Traceback" in done.stderr and "BadInput: --db-prefix 'a b'" in done.stderr
