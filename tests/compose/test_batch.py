"""The batch layer on the container stack: submitted to the Spark standalone cluster, its star
schema read back through the Thrift Server as BI tools read it, scored against the labels."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from tests.compose.conftest import DATASET, DAYS, REPO

STAR_SCHEMA = {"dim_subscriber", "dim_date", "dim_time", "dim_cell", "dim_service", "dim_device", "dim_tariff",
               "fact_usage", "fact_billing", "fact_invoice_line", "anomalies"}


def test_batch_jobs_run_on_the_spark_cluster_not_in_local_mode(batch_run):
    master = requests.get(f"http://127.0.0.1:{batch_run.env.get('SPARK_MASTER_UI_PORT') or 8080}/json/", timeout=10).json()
    assert master["status"] == "ALIVE" and len(master["workers"]) == 2, master["workers"]
    batch_apps = [app for app in master["completedapps"] if app["name"].startswith("cdr-batch")]
    if not batch_apps and os.environ.get("CDR_COMPOSE_REUSE_BATCH") == "1":
        pytest.skip("CDR_COMPOSE_REUSE_BATCH=1 reused an earlier run's warehouse; the master lists only its own runs")
    assert batch_apps, [app["name"] for app in master["completedapps"]]
    # Each got executors on the cluster's workers (a local[*] application never registers here).
    assert all(app["cores"] >= 1 and app["state"] == "FINISHED" for app in batch_apps), batch_apps
    assert any(app["name"] == "cdr-thriftserver" for app in master["activeapps"]), master["activeapps"]


def test_the_run_s_latest_day_and_counts_reached_prometheus(batch_run):
    """`cdr batch run` in the tools container pushed them to the Pushgateway (through its loopback
    forward, compose/cdr.env), which Prometheus scrapes (cdr/pushgateway.py, docs/batch.md)."""
    import datetime as dt
    import time

    if os.environ.get("CDR_COMPOSE_REUSE_BATCH") == "1":
        pytest.skip("CDR_COMPOSE_REUSE_BATCH=1: the warehouse may hold other runs' days than the last push's")
    [(day, valid, quarantined, duplicates)] = batch_run.hive(
        "SELECT CAST(max(`date`) AS STRING), sum(clean), sum(quarantined), sum(duplicates) FROM cdr_ops.reconciliation")
    want = {"day": dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC).timestamp(),
            "valid": valid, "quarantined": quarantined, "duplicate": duplicates}
    url = f"http://127.0.0.1:{batch_run.env.get('PROMETHEUS_PORT') or 9090}/api/v1/query"
    deadline = time.monotonic() + 30  # the Pushgateway is scraped every 10 s
    while True:
        seen = {}
        for query, by in (('cdr_batch_latest_day_timestamp_seconds{job="cdr-batch"}', None),
                          ('cdr_batch_last_run_records{job="cdr-batch"}', "outcome")):
            for r in requests.get(url, params={"query": query}, timeout=10).json()["data"]["result"]:
                seen[r["metric"][by] if by else "day"] = float(r["value"][1])
        if seen == want or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert seen == want


def test_the_star_schema_is_read_through_the_thrift_server(batch_run):
    tables = {row[1] for row in batch_run.hive("SHOW TABLES IN cdr_dw")}
    assert STAR_SCHEMA <= tables, STAR_SCHEMA - tables
    days = batch_run.hive("SELECT count(DISTINCT date), count(*) FROM cdr_dw.fact_usage")[0]
    assert days[0] == DAYS and days[1] > 10_000, days
    # Every home-network event's cell is in the cell dimension (roaming events have none of ours).
    orphans = batch_run.hive(
        "SELECT count(*) FROM cdr_dw.fact_usage f LEFT ANTI JOIN cdr_dw.dim_cell c ON f.cell_id = c.cell_id "
        "WHERE f.cell_id IS NOT NULL AND NOT f.roaming")[0][0]
    assert orphans == 0


def test_batch_scores_every_scenario_and_catches_every_labelled_defect(batch_run):
    # Scoring evaluates the warehouse the cluster built; it is no step of the chain. It runs in the
    # tool container's own JVM (local mode): no executors to start on the busy workers.
    done = batch_run.cdr("batch", "score", "--labels", DATASET, "--min-score", "0.9", check=False,
                         env={"CDR_BATCH__MASTER": "local[2]"})
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "precision" in done.stdout
    assert "(balanced)" in done.stdout, done.stdout          # every record valid, quarantined or a duplicate
    all_defects = next(line for line in done.stdout.splitlines() if line.startswith("all "))
    assert all_defects.split()[1] == all_defects.split()[2], all_defects   # labelled == caught


def test_bad_input_in_the_container_gets_the_same_exit_codes_and_writes_nothing(batch_run):
    """The error policy (docs/operations.md) through `compose.py cdr`: a dataset without its
    reference folders is refused before the first write, with exit 2, one line and no traceback."""
    before = batch_run.hive("SHOW PARTITIONS cdr_ops.reconciliation")
    batch_run.cdr("generate", "--out", "data/compose-bad", "--subscribers", "100", "--days", "1", "--overwrite")
    done = subprocess.run(batch_run.stack.argv("run", "--rm", "--no-deps", "-T", "cdr", "sh", "-c",
                                               "rm -r data/compose-bad/subscribers && cdr batch run --input data/compose-bad",
                                               profiles=("tools",)),
                          cwd=REPO / "compose", capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "has no subscribers/ folder" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert batch_run.hive("SHOW PARTITIONS cdr_ops.reconciliation") == before
