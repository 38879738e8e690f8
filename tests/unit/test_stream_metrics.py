"""The detection job's own counters: counted per reason in its UDF, read back through Flink's REST
API (streaming.jobs.counter_sums) and listed by `cdr stream status`, on small inline data."""

from __future__ import annotations

import json
import os
import subprocess

from typer.testing import CliRunner

from cdr.settings import REPO_ROOT, get_settings

FLINK_PYTHON = get_settings().flink.venv_dir / "bin" / "python"


def test_rest_counters_are_summed_per_label_and_other_metrics_ignored():
    from streaming.jobs import counter_sums

    metrics = [  # as /jobs/<id>/vertices/<id>/subtasks/metrics answers, two vertices concatenated
        {"id": "PythonCalc_40_.cdr.records_valid", "min": 3, "max": 5, "avg": 4, "sum": 8},
        {"id": "PythonCalc_40_.cdr.reason.wrong_type.records_dead_lettered", "sum": 2},
        {"id": "PythonCalc_40_.cdr.reason.unparseable.records_dead_lettered", "sum": 1},
        {"id": "PythonCalc_40_.numRecordsIn", "sum": 99},
        {"id": "PythonCalc_34_.cdr.scenario.sim_box.alerts_raised", "sum": 4},
        {"id": "PythonCalc_34_.cdr.scenario.wangiri.alerts_raised", "sum": 1},
        {"id": "PythonCalc_41_.cdr.reason.wrong_type.records_dead_lettered", "sum": 3},
    ]
    assert counter_sums(metrics) == {
        "records_valid": {"": 8},
        "records_dead_lettered": {"wrong_type": 5, "unparseable": 1},
        "alerts_raised": {"sim_box": 4, "wangiri": 1},
    }
    assert counter_sums([]) == {}


COUNT_SCRIPT = r'''
import json
from streaming.flink.udfs import CountRecords

class Counter:
    def __init__(self): self.n = 0
    def inc(self, n=1): self.n += n

class Group:
    def __init__(self, scope): self.scope, self.counters = scope, registry
    def add_group(self, name, extra=None):
        return Group(self.scope + ([name] if extra is None else [name, extra]))
    def counter(self, name):
        return self.counters.setdefault(".".join(self.scope + [name]), Counter())

class Context:
    def get_metric_group(self): return Group([])

registry = {}
udf = CountRecords()
udf.open(Context())
out = [udf.eval("valid", None, 7), udf.eval("dead_lettered", "wrong_type", 2),
       udf.eval("dead_lettered", "unparseable", 1), udf.eval("dead_lettered", "wrong_type", 3), udf.eval("valid", None, 1),
       udf.eval("ahead_of_clock", None, 4)]
print(json.dumps({"out": out, "counters": {k: c.n for k, c in registry.items()}}))
'''


def test_count_records_counts_valid_ahead_of_clock_and_dead_letters_per_reason():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([str(FLINK_PYTHON), "-c", COUNT_SCRIPT], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["out"] == [7, 2, 1, 3, 1, 4]  # the counts pass through
    assert result["counters"] == {
        "cdr.records_valid": 8,
        "cdr.records_ahead_of_clock": 4,
        "cdr.reason.wrong_type.records_dead_lettered": 5,
        "cdr.reason.unparseable.records_dead_lettered": 1,
    }


def test_stream_status_lists_the_totals_and_dead_letters_per_reason(monkeypatch):
    from streaming import jobs
    from streaming.cli import stream_app

    monkeypatch.setattr(jobs, "list_jobs", lambda s: [jobs.JobState("cdr-detection", "j1", "RUNNING", 1)])
    monkeypatch.setattr(jobs, "job_counters", lambda s, job_id: {
        "records_valid": {"": 1000}, "alerts_raised": {"sim_box": 2},
        "records_dead_lettered": {"wrong_type": 3, "unparseable": 1, "oversized": 3}})
    monkeypatch.setattr(jobs, "resume_point", lambda s, job: None)
    monkeypatch.setattr(jobs, "late_records", lambda s: [])
    result = CliRunner().invoke(stream_app, ["status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "cdr-detection    RUNNING    j1  alerts_raised 2 · records_dead_lettered 7 · records_valid 1,000"
    assert lines[1] == "  dead letters per reason: oversized 3, wrong_type 3, unparseable 1"
