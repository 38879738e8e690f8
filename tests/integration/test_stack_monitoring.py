"""Prometheus and Alertmanager of the local stack, and the alert rules' own tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

from cdr.settings import REPO_ROOT

RULE_TESTS = REPO_ROOT / "monitoring" / "prometheus" / "tests" / "stack_rules_test.yml"


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
    # Kafka x3, NameNode, DataNode x2, Thrift Server, Flink JM + TM, Prometheus, Alertmanager.
    assert len(expected) == 11
    on_demand = {t["labels"]["job"] for t in active if t["labels"]["availability"] == "on-demand"}
    assert on_demand == {"cdr-producer"}


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
    alerts = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"ServiceDown", "KafkaUnderReplicatedPartitions", "HdfsDataNodeDead", "FlinkNoTaskManager"} <= alerts
    alertmanagers = _prometheus(local_stack, "/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [am["url"] for am in alertmanagers] == [
        f"http://127.0.0.1:{local_stack.settings.prometheus.alertmanager_port}/api/v2/alerts"
    ]


def test_alert_rules_pass_their_promtool_tests():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make setup` (cdr stack install) installs it (Debian package prometheus)"
    result = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
