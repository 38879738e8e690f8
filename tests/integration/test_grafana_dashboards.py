"""Every query of the Grafana dashboards (monitoring/grafana/dashboards/) against the local stack's Prometheus.

Grafana runs only in the container stack, but the dashboards read the same metrics from the same
exporters, so their PromQL is run here as Grafana would send it: variables at "All" and at the first
value their own query finds, $__rate_interval as 1m. Every query must be accepted by Prometheus.
Queries on services that are always up in the stack must also return data: a panel showing "No data"
because of a misspelt metric or label is what this test exists to catch. Queries whose series exist
only while something runs are checked for syntax only, unless that something runs now (see SOURCES).
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.unit.test_grafana_dashboards import (
    all_values,
    dashboard_files,
    grafana_regex_escape,
    load,
    substitute,
    targets,
)

pytestmark = pytest.mark.stack

# Series that exist only while something runs. A query matching one of these patterns is checked for
# syntax only, unless the probe (an instant query) says that source is running now: then it must
# return data too. probe None = never required in the local stack.
SOURCES = {
    # The producer's own endpoint is scraped only while `cdr produce` runs (it registers its target then).
    "producer": (re.compile(r"\bcdr_producer_|job=\"cdr-producer\""), 'min_over_time(up{job="cdr-producer"}[2m]) == 1'),
    # Job-scoped Flink metrics (checkpoints, task and operator metrics, the detection job's
    # cdr_records_valid / cdr_reason_records_dead_lettered) exist only while a job runs on the cluster.
    "flink job": (re.compile(r"\bflink_(jobmanager|taskmanager)_job_"), "min_over_time(flink_jobmanager_numRunningJobs[2m]) > 0"),
    # Of those, the detection job's own (its counters, sinks and dead-letter writer) exist only while
    # it runs: another job running (the bronze landing alone, after a test stopped the detection
    # job) does not make them required. Running for 2 minutes now: a stopped job's series go stale.
    "detection job": (re.compile(r"cdr_(reason_)?records_|cdr_scenario_alerts|operator_name=~\"(Sink|dead_letter)|job_name=\"cdr_detection\""),
                      'flink_jobmanager_job_uptime{job_name="cdr_detection"} > 120000'),
    # A broker creates a topic's BrokerTopicMetrics series when that topic first gets traffic after the
    # broker started; only the all-topics series (topic="") exist from start-up.
    "per-topic broker meters": (re.compile(r'kafka_server_brokertopicmetrics_\w+\{(?![^}]*topic="")'), None),
    # kafka-exporter is not part of either stack (consumer lag is a later issue); its panels are syntax-only.
    "kafka-exporter": (re.compile(r"\bkafka_consumergroup_"), None),
    # Pushed by the commands when they end (Pushgateway): there once a batch run, a reconciliation,
    # a `cdr stream start` has pushed them on this stack.
    "batch run": (re.compile(r"\bcdr_batch_"), "cdr_batch_last_run_timestamp_seconds"),
    "layer reconciliation": (re.compile(r"\bcdr_serving_"), "cdr_serving_reconcile_timestamp_seconds"),
    "expected jobs": (re.compile(r"\bcdr_stream_job_expected"), "cdr_stream_job_expected"),
    # ALERTS has series only while an alert is pending or firing.
    "alerts": (re.compile(r"\bALERTS\b"), None),
}


def _prometheus(local_stack, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{local_stack.settings.prometheus.port}{path}"
    body = requests.get(url, params=params, timeout=30).json()
    assert body["status"] == "success", body
    return body["data"]


def _query(local_stack, expr: str) -> dict:
    """Instant query; returns Prometheus' whole answer (status, error) without asserting."""
    url = f"http://127.0.0.1:{local_stack.settings.prometheus.port}/api/v1/query"
    return requests.get(url, params={"query": expr}, timeout=30).json()


@pytest.fixture(scope="module")
def running_sources(local_stack) -> set[str]:
    running = set()
    for name, (_, probe) in SOURCES.items():
        if probe and _query(local_stack, probe)["data"]["result"]:
            running.add(name)
    return running


def _first_values(local_stack, dashboard: dict) -> dict[str, str]:
    """Each variable at the first value its query returns (as Grafana would list it), else at All."""
    values = {}
    for variable in dashboard["templating"]["list"]:
        query = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
        selector, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query).groups()
        found = _prometheus(local_stack, f"/api/v1/label/{label}/values",
                            **{"match[]": selector, "start": str(time.time() - 3600)})
        if regex := variable.get("regex"):
            pattern = re.compile(regex.strip("/"))
            found = [v for v in found if pattern.search(v)]
        values[variable["name"]] = grafana_regex_escape(sorted(found)[0]) if found else variable["allValue"]
    return values


def _cases():
    for path in dashboard_files():
        dashboard = load(path)
        for panel, target in targets(dashboard):
            yield pytest.param(dashboard, panel, target, id=f"{dashboard['uid']}/{panel['id']}{target['refId']}")


@pytest.mark.parametrize(("dashboard", "panel", "target"), list(_cases()))
def test_query_runs_and_always_on_services_have_data(local_stack, running_sources, dashboard, panel, target):
    where = f"{dashboard['title']!r} panel {panel['title']!r} ({target['refId']})"
    expr = substitute(target["expr"], all_values(dashboard))
    answer = _query(local_stack, expr)
    assert answer["status"] == "success", f"{where}: {answer.get('error')}\n{expr}"

    concrete = substitute(target["expr"], _first_values(local_stack, dashboard))
    if concrete != expr:
        other = _query(local_stack, concrete)
        assert other["status"] == "success", f"{where}: {other.get('error')}\n{concrete}"

    needs = {name for name, (pattern, _) in SOURCES.items() if pattern.search(target["expr"])}
    if needs - running_sources:
        return  # syntax only: see SOURCES for why these series may legitimately be absent now
    # `or vector(0)` would turn a wrong metric name into a plausible 0.
    assert "vector(" not in expr, f"{where}: a query that must return data cannot fall back to vector()"
    assert answer["data"]["result"], f"{where} returns no data (wrong metric or label?)\n{expr}"


def test_required_queries_cover_every_always_on_service(local_stack):
    """The non-empty check above must bite on each always-on job, not only on `up`."""
    required = " ".join(
        t["expr"] for path in dashboard_files() for _, t in targets(load(path))
        if not any(pattern.search(t["expr"]) for pattern, _ in SOURCES.values())
    )
    for prefix in ("up", "kafka_server_", "kafka_controller_", "fs_namesystem_", "flink_jobmanager_num",
                   "flink_taskmanager_Status_", "_driver_", "org_apache_hadoop_hdfs_server_datanode_"):
        assert prefix in required, prefix


def test_a_wrong_metric_name_is_caught(local_stack):
    """The check itself: a misspelt metric is valid PromQL but returns nothing."""
    answer = _query(local_stack, 'max(fs_namesystem_num_live_datanodes)')
    assert answer["status"] == "success" and answer["data"]["result"] == []
    answer = _query(local_stack, 'sum(rate(up[1m])')
    assert answer["status"] == "error" and answer["errorType"] == "bad_data"


def _grafana_alert_queries():
    from tests.unit.test_grafana_schema import provisioned_alert_rules

    for rule in provisioned_alert_rules():
        for query in rule["data"]:
            if query["datasourceUid"] == "prometheus":
                yield pytest.param(query["model"]["expr"], id=rule["title"])


@pytest.mark.parametrize("expr", list(_grafana_alert_queries()))
def test_grafana_alert_rule_query_runs(local_stack, expr):
    """Grafana's alert rules (compose/grafana/provisioning/alerting/) ask this Prometheus their
    queries; each must be accepted (their firing and silence are tested by promtool on the same
    expressions: tests/unit/test_alert_rules.py)."""
    answer = _query(local_stack, expr)
    assert answer["status"] == "success", f"{answer.get('error')}\n{expr}"
