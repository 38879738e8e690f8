"""What the CLIs push to the Pushgateway (cdr/pushgateway.py): the registries built from a run's
summary, the value the gateway already holds, and an unreachable gateway (a closed local port, not a
mock) that costs one warning line and nothing else."""

from __future__ import annotations

import datetime as dt
import socket

from cdr import pushgateway as pg
from cdr.settings import get_settings

JAN_5 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp()
JAN_6 = JAN_5 + 86400
RECORDS = {"valid": 900, "quarantined": 7, "duplicate": 3}


def _values(registry) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples}


def test_a_day_is_its_start_at_midnight_utc():
    assert pg.day_start(dt.date(2026, 1, 5)) == JAN_5 == 1767571200


def test_a_successful_run_pushes_its_times_its_latest_day_and_its_records():
    run = pg.BatchRun(1000.0, 1600.5, True, (dt.date(2026, 1, 6), dt.date(2026, 1, 5)), RECORDS)
    assert _values(pg.batch_registry(run)) == {
        ("cdr_batch_last_run_timestamp_seconds", ()): 1600.5,
        ("cdr_batch_last_run_success", ()): 1,
        ("cdr_batch_last_run_duration_seconds", ()): 600.5,
        ("cdr_batch_last_success_timestamp_seconds", ()): 1600.5,
        ("cdr_batch_latest_day_timestamp_seconds", ()): JAN_6,
        ("cdr_batch_last_run_records", (("outcome", "valid"),)): 900,
        ("cdr_batch_last_run_records", (("outcome", "quarantined"),)): 7,
        ("cdr_batch_last_run_records", (("outcome", "duplicate"),)): 3,
    }


def test_a_failed_run_pushes_only_what_every_run_pushes():
    """POSTed, so the gateway keeps the last success's day, records and time."""
    assert _values(pg.batch_registry(pg.BatchRun(1000.0, 1030.0, False))) == {
        ("cdr_batch_last_run_timestamp_seconds", ()): 1030.0,
        ("cdr_batch_last_run_success", ()): 0,
        ("cdr_batch_last_run_duration_seconds", ()): 30.0,
    }


def test_rerunning_an_older_day_does_not_move_the_latest_day_back():
    older = pg.BatchRun(0.0, 1.0, True, (dt.date(2026, 1, 5),), RECORDS)
    assert _values(pg.batch_registry(older, held_latest_day=JAN_6))[(pg.LATEST_DAY, ())] == JAN_6
    newer = pg.BatchRun(0.0, 1.0, True, (dt.date(2026, 1, 7),), RECORDS)
    assert _values(pg.batch_registry(newer, held_latest_day=JAN_6))[(pg.LATEST_DAY, ())] == JAN_6 + 86400


def test_reconciliation_rows_are_summed_per_outcome_over_types_and_days():
    rows = [{"record_type": "voice", "records_in": 105, "clean": 100, "quarantined": 3, "duplicates": 2},
            {"record_type": "sms", "records_in": 51, "clean": 50, "quarantined": 1, "duplicates": 0},
            {"record_type": "voice", "records_in": 0, "clean": 0, "quarantined": 0, "duplicates": 0}]
    assert pg.reconciled_records(rows) == {"valid": 150, "quarantined": 4, "duplicate": 2}
    assert pg.reconciled_records([]) == {}


def test_the_value_held_is_read_from_the_gateway_s_own_group_only():
    # As the gateway's /metrics shows them: each group's labels on its series, instance="" added.
    text = (f"# HELP {pg.LATEST_DAY} Start of the latest day.\n# TYPE {pg.LATEST_DAY} gauge\n"
            f'{pg.LATEST_DAY}{{db_prefix="it_",instance="",job="cdr-batch"}} 9e+09\n'
            f'{pg.LATEST_DAY}{{instance="",job="cdr-batch"}} 1.7676576e+09\n'
            '# TYPE push_time_seconds gauge\n'
            'push_time_seconds{instance="",job="cdr-batch"} 1.76e+09\n')
    assert pg.held_value(text, pg.LATEST_DAY, "cdr-batch") == JAN_6
    assert pg.held_value(text, pg.LATEST_DAY, "cdr-batch", {"db_prefix": "it_"}) == 9e9
    assert pg.held_value(text, pg.LATEST_DAY, "cdr-serving") is None
    assert pg.held_value("", pg.LATEST_DAY, "cdr-batch") is None


def test_stream_jobs_are_named_as_flink_s_reporter_labels_them():
    assert pg.stream_grouping_key("cdr-detection") == {"job_name": "cdr_detection"}
    assert _values(pg.stream_job_registry()) == {("cdr_stream_job_expected", ()): 1}


def test_a_reconciliation_pushes_its_verdict_its_day_and_when():
    assert _values(pg.reconcile_registry(dt.date(2026, 1, 5), False, 1234.0)) == {
        ("cdr_serving_reconcile_balanced", ()): 0,
        ("cdr_serving_reconcile_day_timestamp_seconds", ()): JAN_5,
        ("cdr_serving_reconcile_timestamp_seconds", ()): 1234.0,
    }


def test_an_unreachable_gateway_is_one_warning_line_and_no_exception(monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("CDR_PROMETHEUS__PUSHGATEWAY_PORT", str(closed))
    get_settings.cache_clear()
    try:
        settings = get_settings()
        run = pg.BatchRun(0.0, 1.0, True, (dt.date(2026, 1, 5),), RECORDS)
        assert pg.push_batch_run(settings, run) is False
        assert pg.forget_stream_job(settings, "cdr-bronze") is False
    finally:
        get_settings.cache_clear()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: ") for line in lines), lines
    assert f"127.0.0.1:{closed}" in lines[0] and "cdr-batch" in lines[0]
