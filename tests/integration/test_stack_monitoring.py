"""Prometheus and Alertmanager of the local stack: targets, rules, and what Alertmanager does with
alerts (routing, inhibition). The rules' own tests: tests/unit/test_alert_rules.py."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import requests

from tests.unit.test_alert_rules import alert_rules

def _prometheus(local_stack, path: str, **params: str) -> dict:
    url = f"http://127.0.0.1:{local_stack.settings.prometheus.port}{path}"
    body = requests.get(url, params=params, timeout=10).json()
    assert body["status"] == "success"
    return body["data"]


@pytest.mark.stack
def test_every_always_on_target_is_up(local_stack):
    from stack.services.monitoring import always_on_targets

    active = _prometheus(local_stack, "/api/v1/targets", state="active")["activeTargets"]
    health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in active}
    expected = {(job, target) for job, targets in always_on_targets(local_stack.settings).items() for target in targets}
    assert {key: health.get(key) for key in expected} == {key: "up" for key in expected}
    # Kafka x3, NameNode, DataNode x2, Thrift Server, Flink JM + TM, Prometheus, Alertmanager, Pushgateway.
    assert len(expected) == 12
    # Every target is expected up: the producer's is listed only while a producer runs (it registers itself).
    assert {t["labels"]["availability"] for t in active} == {"always-on"}


@pytest.mark.stack
def test_scraped_metrics_carry_service_state(local_stack):
    def value(query: str) -> float:
        result = _prometheus(local_stack, "/api/v1/query", query=query)["result"]
        assert result, f"no samples for {query}"
        return float(result[0]["value"][1])

    assert value('sum(kafka_controller_kafkacontroller_value{name="ActiveControllerCount"})') == 1
    assert value("max(fs_namesystem_num_live_data_nodes)") == 2
    assert value("max(flink_jobmanager_numRegisteredTaskManagers)") == 1


@pytest.mark.stack
def test_rules_are_loaded_and_alertmanager_is_attached(local_stack):
    groups = _prometheus(local_stack, "/api/v1/rules")["groups"]
    alerts = {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}
    assert alerts == {rule["alert"] for rule in alert_rules()}
    assert all(rule["health"] == "ok" for group in groups for rule in group["rules"]), groups
    alertmanagers = _prometheus(local_stack, "/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [am["url"] for am in alertmanagers] == [
        f"http://127.0.0.1:{local_stack.settings.prometheus.alertmanager_port}/api/v2/alerts"
    ]


def _alertmanager(local_stack) -> str:
    return f"http://127.0.0.1:{local_stack.settings.prometheus.alertmanager_port}/api/v2"


@pytest.mark.stack
def test_the_watchdog_reaches_alertmanager_and_only_the_heartbeat_receiver(local_stack):
    """The heartbeat end to end: Prometheus evaluates it, sends it, Alertmanager routes it."""
    deadline = time.monotonic() + 60   # an evaluation (10 s) and a send after a restart or reload
    while True:
        alerts = requests.get(f"{_alertmanager(local_stack)}/alerts", params={"filter": 'alertname="Watchdog"'},
                              timeout=10).json()
        if alerts or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(alerts) == 1, alerts
    assert [r["name"] for r in alerts[0]["receivers"]] == ["heartbeat"]
    assert alerts[0]["status"]["state"] == "active"


@pytest.mark.stack
def test_a_service_down_holds_back_the_alerts_of_the_pipelines_that_need_it(local_stack):
    """Inhibition on the real Alertmanager: alerts posted as Prometheus would (labelled with a run
    id of their own, so that nothing else is touched), then expired."""
    run = uuid.uuid4().hex[:12]
    now = dt.datetime.now(dt.timezone.utc)
    ends = (now + dt.timedelta(minutes=5)).isoformat()

    def alert(name: str, **labels: str) -> dict:
        return {"labels": {"alertname": name, "test_run": run, **labels}, "startsAt": now.isoformat(), "endsAt": ends}

    posted = [
        alert("ServiceDown", job="kafka", instance="127.0.0.1:9404", severity="critical", pipeline="stack"),
        alert("KafkaUnderReplicatedPartitions", instance="127.0.0.1:9405", severity="warning", pipeline="stack"),
        alert("StreamJobNotRunning", job_name="cdr_detection", severity="critical", pipeline="streaming"),
        alert("BatchRunFailed", severity="critical", pipeline="batch"),
    ]
    url = _alertmanager(local_stack)
    requests.post(f"{url}/alerts", json=posted, timeout=10).raise_for_status()
    try:
        got = {a["labels"]["alertname"]: a["status"]
               for a in requests.get(f"{url}/alerts", params={"filter": f'test_run="{run}"'}, timeout=10).json()}
        assert {name: status["state"] for name, status in got.items()} == {
            "ServiceDown": "active", "KafkaUnderReplicatedPartitions": "suppressed",
            "StreamJobNotRunning": "suppressed", "BatchRunFailed": "active"}
        assert all(got[name]["inhibitedBy"] for name in ("KafkaUnderReplicatedPartitions", "StreamJobNotRunning"))
    finally:
        expired = [{**a, "endsAt": dt.datetime.now(dt.timezone.utc).isoformat()} for a in posted]
        requests.post(f"{url}/alerts", json=expired, timeout=10).raise_for_status()
