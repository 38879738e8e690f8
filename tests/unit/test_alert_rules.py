"""The alert rules and the Alertmanager configuration, checked with the tools that run them:
promtool (rule syntax and each rule's unit tests) and amtool (configuration and routing). Both come
from the Debian packages the set-up installs (`cdr stack install`); a missing tool is a failure."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from cdr.settings import REPO_ROOT, get_settings

PROMETHEUS = REPO_ROOT / "monitoring" / "prometheus"
ALERTMANAGER = REPO_ROOT / "monitoring" / "alertmanager"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*_rules_test.yml"))
OPERATIONS = REPO_ROOT / "docs" / "operations.md"

SEVERITIES = {"critical", "warning", "none"}
PIPELINES = {"stack", "streaming", "batch", "data-quality", "meta"}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: `make setup` (cdr stack install) installs it (Debian package {package})"
    return path


def alert_rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def test_rule_files_pass_promtool_check():
    result = subprocess.run([_tool("promtool", "prometheus"), "check", "rules", *map(str, RULE_FILES)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_rules_pass_their_promtool_tests(path):
    result = subprocess.run([_tool("promtool", "prometheus"), "test", "rules", path.name],
                            capture_output=True, text=True, cwd=path.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_file_is_tested_and_every_alert_fires_once_and_stays_silent_once():
    tested_files = {(path.parent / f).resolve() for path in RULE_TESTS
                    for f in yaml.safe_load(path.read_text())["rule_files"]}
    assert tested_files == {p.resolve() for p in RULE_FILES}
    firing, silent = set(), set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts with no case where they must fire"
    # The heartbeat fires always, by design: it has no silent case.
    assert names - silent == {"Watchdog"}, "alerts with no case where they must stay silent"


def test_every_alert_has_severity_pipeline_and_a_runbook_that_exists():
    headings = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in OPERATIONS.read_text().splitlines() if line.startswith("#")}
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in alert_rules():
        where = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, where
        assert rule["labels"]["pipeline"] in PIPELINES, where
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], where
        assert annotations["runbook_url"] == f"docs/operations.md#{where.lower()}", where
        assert where.lower() in headings, f"{where}: no runbook section in docs/operations.md"


def test_checkpoint_age_alert_allows_three_intervals_of_every_job():
    """The rule's threshold is a literal (PromQL reads no configuration): it must stay at least
    three checkpoint intervals of the slowest job, or it fires between two healthy checkpoints."""
    (rule,) = [r for r in alert_rules() if r["alert"] == "StreamCheckpointTooOld"]
    seconds = int(re.search(r"/ 1000 > (\d+)\)", rule["expr"]).group(1))
    uptime_ms = int(re.search(r"uptime\) > (\d+)\)", rule["expr"]).group(1))
    settings = get_settings()
    slowest = max(settings.bronze.checkpoint_interval_s, settings.detection.checkpoint_interval_s)
    assert seconds >= 3 * slowest and uptime_ms == seconds * 1000


def test_alertmanager_config_passes_amtool_check():
    result = subprocess.run([_tool("amtool", "prometheus-alertmanager"), "check-config",
                             str(ALERTMANAGER / "alertmanager.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


ROUTE_CASES = yaml.safe_load((ALERTMANAGER / "tests" / "routes.yml").read_text())


@pytest.mark.parametrize("case", ROUTE_CASES, ids=lambda c: c["labels"]["alertname"])
def test_alerts_reach_their_receivers(case):
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    result = subprocess.run([_tool("amtool", "prometheus-alertmanager"), "config", "routes", "test",
                             f"--config.file={ALERTMANAGER / 'alertmanager.yml'}",
                             f"--verify.receivers={','.join(case['receivers'])}", *labels],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_pipeline_and_severity_of_the_rules_has_a_routing_case():
    covered = {(c["labels"].get("pipeline"), c["labels"].get("severity")) for c in ROUTE_CASES}
    used = {(r["labels"]["pipeline"], r["labels"]["severity"]) for r in alert_rules()}
    assert used - covered == set()
