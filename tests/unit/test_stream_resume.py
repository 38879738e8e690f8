"""Where a speed-layer job resumes: the newer of its last savepoint and its last run's retained
checkpoint, per job and topics (files only: the Flink side is tested on the local stack)."""

from __future__ import annotations

import os
import time

import pytest

from cdr.settings import get_settings


@pytest.fixture
def settings_at(tmp_path, monkeypatch):
    """Settings with the stack's home in a temporary folder and the given topic prefix."""
    def make(prefix: str = "cdr."):
        monkeypatch.setenv("CDR_STACK__HOME", str(tmp_path / "stack"))
        monkeypatch.setenv("CDR_TOPICS__PREFIX", prefix)
        get_settings.cache_clear()
        return get_settings()

    yield make
    get_settings.cache_clear()


def _snapshot(path, age_s: float = 0.0):
    """A completed checkpoint or savepoint folder (it has _metadata), ``age_s`` old."""
    path.mkdir(parents=True)
    (path / "_metadata").write_bytes(b"x")
    then = time.time() - age_s
    os.utime(path / "_metadata", (then, then))
    return path


def test_nothing_to_resume_from(settings_at):
    from streaming.jobs import resume_point

    assert resume_point(settings_at(), "detection") is None


def test_a_cancelled_run_resumes_from_its_checkpoint_when_it_is_newer_than_the_savepoint(settings_at):
    from stack.services.flink import checkpoints_dir
    from streaming.jobs import _remember, resume_point

    settings = settings_at()
    savepoint = _snapshot(settings.stack.home_dir / "flink" / "savepoints" / "savepoint-1", age_s=600)
    _remember(settings, "detection", savepoint=f"file:{savepoint}")
    assert resume_point(settings, "detection") == savepoint

    _remember(settings, "detection", run="job42")  # the next start, then a cancel
    checkpoint = _snapshot(checkpoints_dir(settings) / "job42" / "chk-7", age_s=5)
    (checkpoints_dir(settings) / "job42" / "chk-8").mkdir()  # being written when cancelled: no _metadata
    assert resume_point(settings, "detection") == checkpoint


def test_a_stop_with_savepoint_resumes_from_the_savepoint(settings_at):
    from stack.services.flink import checkpoints_dir
    from streaming.jobs import _remember, resume_point

    settings = settings_at()
    _remember(settings, "detection", run="job42")
    _snapshot(checkpoints_dir(settings) / "job42" / "chk-7", age_s=5)
    savepoint = _snapshot(settings.stack.home_dir / "flink" / "savepoints" / "savepoint-2")
    _remember(settings, "detection", savepoint=str(savepoint))
    assert resume_point(settings, "detection") == savepoint


def test_a_fresh_start_forgets_the_savepoint_before_it(settings_at):
    from streaming.jobs import _remember, resume_point

    settings = settings_at()
    savepoint = _snapshot(settings.stack.home_dir / "flink" / "savepoints" / "savepoint-1")
    _remember(settings, "detection", savepoint=str(savepoint))
    _remember(settings, "detection", run="job43", savepoint=None)  # what a fresh start records
    assert resume_point(settings, "detection") is None  # job43 was cancelled before its first checkpoint


def test_runs_on_other_topics_do_not_move_the_platforms_resume_point(settings_at):
    from stack.services.flink import checkpoints_dir
    from streaming.jobs import _remember, resume_point

    platform = settings_at("cdr.")
    savepoint = _snapshot(platform.stack.home_dir / "flink" / "savepoints" / "savepoint-1", age_s=600)
    _remember(platform, "detection", savepoint=str(savepoint))

    bench = settings_at("bench-1a2b3c.cdr.")
    _remember(bench, "detection", run="bench-job", savepoint=None)
    bench_checkpoint = _snapshot(checkpoints_dir(bench) / "bench-job" / "chk-3")
    assert resume_point(bench, "detection") == bench_checkpoint

    assert resume_point(settings_at("cdr."), "detection") == savepoint
