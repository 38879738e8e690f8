"""The serving layer on the container stack: the batch (on the Spark cluster) published its days
into PostgreSQL over JDBC from the workers' executors; the merged views read them, the streamed
day's speed rows are rolled up by the database's triggers; the CLI reconciles and lists incidents."""

from __future__ import annotations

import datetime as dt

FIRST_DAY = dt.date(2025, 12, 28)  # the suite's dataset and streamed day (generator and producer defaults)


def test_the_batch_published_its_days_and_the_merged_views_read_them_from_the_batch(batch_run):
    from tests.compose.conftest import DAYS

    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(DAYS)]
    published = {row[0] for row in batch_run.psql("SELECT day FROM serving.published_day")}
    assert set(days) <= published, published
    merged = dict((row[0], row[1:]) for row in batch_run.psql(
        "SELECT hour_start::DATE, string_agg(DISTINCT source, ','), sum(call_attempts)::BIGINT, sum(sms)::BIGINT"
        " FROM serving.cell_hour WHERE hour_start >= %s AND hour_start < %s GROUP BY 1"
        % (f"'{days[0]}'", f"'{days[-1] + dt.timedelta(days=1)}'")))
    # The same counts as the warehouse's fact table, read through the Thrift Server.
    hive = dict((dt.date.fromisoformat(str(row[0])), row[1:]) for row in batch_run.hive(
        "SELECT CAST(`date` AS STRING), sum(CASE WHEN service = 'voice' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN service = 'sms' THEN 1 ELSE 0 END) FROM cdr_dw.fact_usage GROUP BY CAST(`date` AS STRING)"))
    for day in days:
        assert merged[day] == ("batch", *hive[day]), (day, merged[day], hive[day])


def test_the_streamed_day_is_rolled_up_and_superseded_by_the_published_batch_day(batch_run, stream_run):
    # The database's triggers rolled the stream's minutes up to hours ...
    minutes, hours = stream_run.psql(
        "SELECT (SELECT sum(records) FROM kpi_service_minute WHERE minute_start::DATE = DATE '2025-12-28'),"
        " (SELECT sum(records) FROM serving.speed_service_hour WHERE hour_start::DATE = DATE '2025-12-28')")[0]
    assert minutes and minutes == hours, (minutes, hours)
    # ... which the merged view does not read: the batch has published that day.
    sources = stream_run.psql("SELECT DISTINCT source FROM serving.service_hour WHERE hour_start::DATE = DATE '2025-12-28'")
    assert sources == [("batch",)]
    from tests.compose.conftest import DAYS

    status = stream_run.cdr("serving", "status", "--days", "3")
    assert f"complete through {FIRST_DAY + dt.timedelta(days=DAYS - 1)}" in status.stdout, status.stdout


def test_the_cli_reconciles_the_layers_and_lists_incidents(batch_run, stream_run):
    done = stream_run.cdr("serving", "reconcile", "--date", str(FIRST_DAY), check=False)
    verdicts = dict(stream_run.psql(
        f"SELECT record_type, verdict FROM serving.layer_reconciliation WHERE day = DATE '{FIRST_DAY}'"))
    assert len(verdicts) == 5, verdicts
    # The suite streams a live day of its own and batches a generated dataset: the two layers saw
    # different records of that day, and the command must say so (exit 4) exactly when a verdict does.
    disagree = any(v == "unexplained difference" for v in verdicts.values())
    assert done.returncode == (4 if disagree else 0), done.stdout + done.stderr
    incidents = stream_run.cdr("serving", "incidents", "--date", str(FIRST_DAY))
    counted = stream_run.psql(f"SELECT count(*) FROM serving.incidents WHERE day = DATE '{FIRST_DAY}'")[0][0]
    assert counted > 0 and f"{counted} incident(s)" in incidents.stdout, incidents.stdout


def test_the_rollups_answer_what_summing_the_cell_hours_answers(batch_run):
    """serving.cell_day and serving.network_hour, computed in each day's publication, against the
    sums of serving.cell_hour over the published days."""
    from tests.compose.conftest import DAYS

    lo, hi = f"'{FIRST_DAY}'", f"'{FIRST_DAY + dt.timedelta(days=DAYS)}'"
    measures = "call_attempts, answered, dropped_or_failed, sms, data_bytes"
    summed = ", ".join(f"sum({m})::BIGINT" for m in measures.split(", "))
    cell_days = batch_run.psql(f"SELECT day, cell_id, {measures} FROM serving.cell_day"
                               f" WHERE day >= {lo} AND day < {hi} ORDER BY 1, 2")
    assert len(cell_days) > 100 and cell_days == batch_run.psql(
        f"SELECT hour_start::DATE, cell_id, {summed} FROM serving.cell_hour"
        f" WHERE hour_start >= {lo} AND hour_start < {hi} GROUP BY 1, 2 ORDER BY 1, 2")
    network = batch_run.psql(f"SELECT hour_start, {measures} FROM serving.network_hour"
                             f" WHERE hour_start >= {lo} AND hour_start < {hi} ORDER BY 1")
    assert len(network) >= 20 * DAYS and network == batch_run.psql(
        f"SELECT hour_start, {summed} FROM serving.cell_hour WHERE hour_start >= {lo} AND hour_start < {hi}"
        " GROUP BY 1 ORDER BY 1")
