"""The batch chain on the real local stack: HDFS zones, Hive tables in the shared metastore,
queried with PyHive through the Spark Thrift Server, scored against the generator's labels.

The labelled dataset and its `cdr batch run` are the session's ``batch_layer``
(tests/integration/conftest.py), in their own root folder and database prefix.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from cdr.contract import RECORD_TYPES, SCENARIOS
from tests.integration.conftest import BATCH_DAYS as DAYS
from tests.integration.conftest import BATCH_PREFIX as PREFIX
from tests.integration.conftest import BATCH_START as START
from tests.integration.conftest import cdr as _cdr
from tests.integration.conftest import prometheus_values
from tests.integration.thrift import query

pytestmark = [pytest.mark.stack, pytest.mark.spark]


@pytest.fixture(scope="module")
def run(batch_layer):
    return {"data": batch_layer.data, "root": batch_layer.root, "log": batch_layer.log}


@pytest.fixture(scope="module")
def spark(run):
    from stack.spark import session

    from batch.cli import spark_conf

    spark = session("batch-it", extra_conf={**spark_conf(), "spark.sql.shuffle.partitions": "4"})
    yield spark
    spark.stop()


def _query(local_stack, sql: str) -> list[tuple]:
    return query(local_stack, sql, user="batch-test")


def test_tables_are_in_hive_and_queried_through_the_thrift_server(local_stack, run):
    tables = {row[1] for row in _query(local_stack, f"SHOW TABLES IN {PREFIX}cdr_dw")}
    assert {"dim_subscriber", "dim_date", "dim_time", "dim_cell", "dim_service", "dim_device", "dim_tariff",
            "fact_usage", "fact_billing", "fact_invoice_line", "feature_cell_hourly", "feature_region_hourly",
            "feature_service_hourly", "feature_subscriber_daily", "feature_service_trends", "anomalies",
            "mart_service_daily", "mart_cell_daily", "mart_revenue_monthly", "mart_anomalies_daily"} <= tables
    usage = _query(local_stack, f"SELECT count(*) FROM {PREFIX}cdr_dw.fact_usage")[0][0]
    clean = _query(local_stack, f"SELECT sum(clean) FROM {PREFIX}cdr_ops.reconciliation")[0][0]
    assert usage == clean > 100_000
    totals = _query(local_stack, f"SELECT line, count(*) FROM {PREFIX}cdr_dw.fact_invoice_line "
                                 "WHERE line = 'total' GROUP BY line")
    assert totals and totals[0][1] > 1000


def test_reconciliation_is_exact_per_day(local_stack, run):
    manifest = json.loads((run["data"] / "manifest.json").read_text())
    rows = _query(local_stack, f"SELECT record_type, CAST(`date` AS STRING), records_in, clean, quarantined, "
                               f"duplicates, balanced FROM {PREFIX}cdr_ops.reconciliation")
    assert len(rows) == len(RECORD_TYPES) * DAYS
    for rt, day, records_in, clean, quarantined, duplicates, balanced in rows:
        assert records_in == manifest["rows"][rt][day] == clean + quarantined + duplicates and balanced


def test_no_raw_identifier_reaches_the_warehouse(spark, run):
    from pyspark.sql import functions as F

    data = run["data"]
    subs = spark.read.parquet(f"file://{data}/subscribers")
    cdrs = spark.read.parquet(f"file://{data}/cdr/record_type=voice")
    raw = (subs.select(F.col("msisdn").alias("v")).union(subs.select("imsi")).union(subs.select("imei"))
           .union(cdrs.select("other_party")).filter(F.col("v").isNotNull()).distinct().cache())
    assert raw.count() > 5000
    checked = 0
    for db in (f"{PREFIX}cdr_dw", f"{PREFIX}cdr_clean"):
        for table in spark.catalog.listTables(db):
            df = spark.table(f"{db}.{table.name}")
            strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
            if not strings:
                continue
            # Every string value of the table with its column name, joined once with the raw identifiers.
            values = df.select(F.explode(F.array(*[F.struct(F.lit(c).alias("column"), F.col(c).alias("v"))
                                                   for c in strings])).alias("cell")).select("cell.*")
            leaks = values.join(F.broadcast(raw), "v").select("column").distinct().collect()
            assert not leaks, f"raw identifiers in {db}.{table.name}: {[r['column'] for r in leaks]}"
            checked += len(strings)
    assert checked > 50


def test_scores_meet_the_goals(spark, run):
    from batch.io import Zones
    from batch.score import defect_catch, false_quarantine, scenario_scores
    from cdr.pseudonym import DEVELOPMENT_KEY

    zones = Zones(run["root"], PREFIX)
    dataset = f"file://{run['data']}"
    scores = {s.scenario: s for s in scenario_scores(spark, zones, dataset, DEVELOPMENT_KEY)}
    assert set(scores) == set(SCENARIOS)
    for s in scores.values():
        assert s.labels == DAYS and s.precision >= 0.9 and s.recall >= 0.9, s
    for row in defect_catch(spark, zones, dataset).collect():
        assert row["caught"] == row["caught_same_code"] == row["labelled"], row.asDict()
    unlabelled, clean = false_quarantine(spark, zones, dataset)
    assert unlabelled / clean < 0.001


def test_the_run_s_latest_day_and_reconciled_counts_reach_prometheus(local_stack, run):
    """`cdr batch run` pushed them to the Pushgateway (cdr/pushgateway.py), which Prometheus scrapes.
    Before the rerun below, which pushes one day's counts."""
    last_day = dt.datetime.combine(START + dt.timedelta(days=DAYS - 1), dt.time(), dt.UTC).timestamp()
    settings = local_stack.settings
    assert prometheus_values(settings, 'cdr_batch_latest_day_timestamp_seconds{job="cdr-batch"}',
                             {"": last_day}) == {"": last_day}
    [(valid, quarantined, duplicates)] = _query(
        local_stack, f"SELECT sum(clean), sum(quarantined), sum(duplicates) FROM {PREFIX}cdr_ops.reconciliation")
    counts = {"valid": valid, "quarantined": quarantined, "duplicate": duplicates}
    assert valid > 100_000, counts
    assert prometheus_values(settings, 'cdr_batch_last_run_records{job="cdr-batch"}', counts, by="outcome") == counts
    assert prometheus_values(settings, 'cdr_batch_last_run_success{job="cdr-batch"}', {"": 1}) == {"": 1}


def test_rerunning_a_day_leaves_the_same_rows(local_stack, run):
    day = (START + dt.timedelta(days=DAYS - 1)).isoformat()
    checks = {
        "cdr_ops.quarantine": "count(*), sum(hash(batch_id, record_id, rule_code, reason, raw_record))",
        "cdr_ops.reconciliation": "count(*), sum(hash(batch_id, record_type, records_in, clean, quarantined))",
        "cdr_dw.fact_usage": "count(*), sum(hash(record_id, subscriber_key, plan, rated_charge_dzd))",
        "cdr_dw.anomalies": "count(*), sum(hash(scenario, entity_id, window_start, window_end, score))",
    }

    def snapshot():
        # The day as a string: the Thrift server's metastore cannot prune by a DATE literal filter.
        return {t: _query(local_stack, f"SELECT {expr} FROM {PREFIX}{t} WHERE CAST(`date` AS STRING) = '{day}'")
                for t, expr in checks.items()}

    before = snapshot()
    _cdr("batch", "run", "--date", day, "--step", "validate", "--step", "facts", "--step", "anomalies", "--dev-key",
         "--root", run["root"], "--db-prefix", PREFIX)
    assert snapshot() == before


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _execute_notebook(name: str, **env: str) -> dict:
    """Runs notebooks/<name> top to bottom in a fresh python3 kernel of this virtualenv, its working
    directory notebooks/ as in JupyterLab; fails on the first cell that raises. Returns the code
    cells by tag."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=600, startup_timeout=120,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute(env=dict(os.environ, **env))
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    return {tag: cell for cell in nb.cells if cell.cell_type == "code" for tag in cell.metadata.get("tags", [])}


def _printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _figures(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.outputs)


def test_warehouse_notebook_runs_against_the_prefixed_databases(run):
    import re

    cells = _execute_notebook("01_warehouse_eda.ipynb", CDR_DB_PREFIX=PREFIX)
    assert f"warehouse: {PREFIX}cdr_dw via " in _printed(cells["setup"])
    assert f"days: {DAYS} rows" in _printed(cells["days"])  # this run's days, not the demo's
    for tag in ("diurnal", "service-mix", "call-results", "drop-rate", "data-technology", "revenue", "anomalies"):
        printed = _printed(cells[tag])
        counts = [int(n) for n in re.findall(r": (\d+) rows$", printed, re.M)]
        assert counts and all(n > 0 for n in counts), (tag, printed)
        assert _figures(cells[tag]) == 1, (tag, printed)
    tables = [o["data"].get("text/plain", "") for o in cells["revenue"].outputs if o.output_type == "display_data"]
    assert any(START.strftime("%Y-%m") in t for t in tables)  # the invoice month of this run
