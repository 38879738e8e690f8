"""The `cdr` command line: help everywhere, one clear line and a non-zero exit on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CDR = [sys.executable, "-m", "cdr.cli"]


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CDR, *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("args", [[], ["generate"], ["stack"], ["contract"], ["contract", "docs"]])
def test_help_everywhere(args):
    r = run(*args, "--help")
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout and "--help" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--subscribers", "-5"], "--subscribers must be at least 100"),
    (["--days", "0"], "--days must be at least 1"),
    (["--format", "xml"], "--format must be one of parquet, csv, jsonl"),
    (["--profile", "atlantis"], "unknown profile 'atlantis'"),
    (["--scenarios", "sim_box,alien_invasion"], "unknown scenario(s) alien_invasion"),
    (["--start", "2025-13-01"], "--start must be a date"),
    (["--defect-rate", "2"], "--defect-rate must be between 0 and 0.5"),
])
def test_bad_arguments_fail_with_one_clear_line(tmp_path, args, message):
    out = tmp_path / "d"
    r = run("generate", "--out", str(out), *args)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {r.stderr.strip()[7:]}"]
    assert message in r.stderr
    assert not out.exists()


def test_existing_dataset_needs_overwrite_and_other_folders_are_refused(tmp_path):
    out = tmp_path / "d"
    args = ["generate", "--out", str(out), "--subscribers", "300", "--days", "1"]
    assert run(*args).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    r = run(*args)
    assert r.returncode == 2 and "already holds a dataset; pass --overwrite" in r.stderr
    r = run(*args, "--overwrite", "--seed", "9")
    assert r.returncode == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 9 != manifest["seed"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    r = run("generate", "--out", str(other), "--subscribers", "300", "--days", "1", "--overwrite")
    assert r.returncode == 2 and "holds no dataset" in r.stderr
    assert (other / "todo.txt").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    r = run("generate", "--out", str(locked / "d"), "--subscribers", "300", "--days", "1")
    assert r.returncode == 2 and "not writable" in r.stderr


def test_output_under_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = run("generate", "--out", str(f), "--subscribers", "300", "--days", "1")
    assert r.returncode == 2 and "is not a directory" in r.stderr


def test_interrupted_generation_leaves_no_dataset(tmp_path):
    """A generation killed mid-way leaves neither a dataset nor its temporary folder."""
    out = tmp_path / "d"
    code = (
        "import sys, generator.dataset as d\n"
        "calls = 0\n"
        "real = d.write_table\n"
        "def failing(*a, **k):\n"
        "    global calls\n"
        "    calls += 1\n"
        "    if calls == 5: raise KeyboardInterrupt\n"
        "    return real(*a, **k)\n"
        "d.write_table = failing\n"
        "from cdr.cli import main\n"
        f"sys.argv = ['cdr', 'generate', '--out', {str(out)!r}, '--subscribers', '300', '--days', '2']\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_generate_prints_a_summary_and_writes_the_documented_layout(tmp_path):
    out = tmp_path / "d"
    r = run("generate", "--out", str(out), "--subscribers", "400", "--days", "2", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert "CDRs/s" in r.stdout and "scenarios:" in r.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["cdr", "cells", "labels", "manifest.json", "subscribers"]
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["defects.csv", "scenarios.csv"]
    for rt, per_day in manifest["rows"].items():
        for day, rows in per_day.items():
            files = list((out / "cdr" / f"record_type={rt}" / f"date={day}").glob("part-*.csv"))
            assert sum(len(f.read_text().splitlines()) - 1 for f in files) == rows
    assert manifest["total_cdrs"] == sum(sum(d.values()) for d in manifest["rows"].values())


def test_batch_spark_sizes_come_from_settings(monkeypatch):
    """`cdr batch` sizes its local Spark from settings [batch], overridable per environment."""
    from batch.cli import spark_conf
    from cdr.settings import get_settings

    monkeypatch.setenv("CDR_BATCH__DRIVER_MEMORY_MB", "3072")
    monkeypatch.setenv("CDR_BATCH__SHUFFLE_PARTITIONS", "5")
    get_settings.cache_clear()
    try:
        conf = spark_conf()
    finally:
        monkeypatch.delenv("CDR_BATCH__DRIVER_MEMORY_MB")
        monkeypatch.delenv("CDR_BATCH__SHUFFLE_PARTITIONS")
        get_settings.cache_clear()
    assert (conf["spark.driver.memory"], conf["spark.sql.shuffle.partitions"]) == ("3072m", "5")
    assert spark_conf()["spark.driver.memory"] == f"{get_settings().batch.driver_memory_mb}m"


@pytest.mark.parametrize("args, code, message", [
    (["contract", "show", "fax"], 2, "unknown record type 'fax'"),
    (["contract", "show", "voice", "--as", "avro"], 2, "--as must be json-schema, flink or spark"),
    (["batch", "run", "--from", "2026-01-02"], 2, "--from and --to go together"),
    (["batch", "run", "--from", "2026-01-02", "--to", "2026-01-01"], 2, "--to 2026-01-01 is before --from 2026-01-02"),
    (["batch", "run", "--date", "2026-01-01", "--from", "2026-01-01", "--to", "2026-01-02"], 2, "not both"),
    (["batch", "tables", "--db-prefix", "x'; DROP"], 2, "--db-prefix \"x'; DROP\" is not a database name prefix"),
])
def test_each_command_s_bad_input_is_one_line_with_exit_2(args, code, message):
    """Failures found before any service is reached (the stack's own cases: tests/integration/test_cli_errors.py)."""
    r = run(*args)
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2, r.stderr
