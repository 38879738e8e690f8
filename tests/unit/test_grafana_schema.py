"""Grafana without Grafana: the container stack's Grafana provisioning against Grafana's own types.

Grafana cannot run on this machine, so what it would read is checked by other means:

* Dashboards (monitoring/grafana/dashboards/*.json) are decoded with the Grafana Foundation SDK
  (grafana-foundation-sdk, types generated from Grafana's dashboard schema, its "next" build for
  Grafana 12) and encoded again. Decoding keeps only the fields the schema has, so a key of the file
  that does not survive the round trip is one Grafana does not know either: a misspelt `gridpos` or
  `target` would be ignored by Grafana without a word, leaving the panel misplaced or empty. Panels
  are decoded with their panel plugin's options and targets as Prometheus queries, so the check
  reaches every level, from the dashboard through panels, queries and fieldConfig to the variables.
* Provisioning files (compose/grafana/provisioning/{datasources,dashboards}/*.yml) are checked
  against the file-provisioning structure Grafana documents (apiVersion 1, the keys it reads, the
  ones it needs); every datasource uid the dashboards reference must be provisioned; and the
  dashboard provider's path must be, through compose/monitoring.yaml's mounts, the dashboards' folder.

Content (units, layout, queries, variables) is tests/unit/test_grafana_dashboards.py, whose helpers
are reused here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard

from cdr.settings import REPO_ROOT
from tests.unit.test_grafana_dashboards import DASHBOARDS, PROVISIONING, dashboard_files, data_panels, load

# Without the panel and query plugins the SDK keeps options and targets as untyped bags that
# survive any round trip, misspelt keys included.
register_default_plugins()

# Keys Grafana knows that the SDK's (v1) dashboard model lacks: `definition` is the query as the
# variable list shows it, written by Grafana's own editor and part of the SDK's v2 schema
# (dashboardv2beta1.QueryVariableSpec), not of v1's VariableModel.
KNOWN_BEYOND_THE_SDK = re.compile(r"\$\.templating\.list\[\d+\]\.definition")

# Datasource references that are not provisioned datasources: Grafana's built-in ones (the
# "-- Grafana --" annotations source, also as uid "grafana", mixed, dashboard and expressions).
BUILTIN_DATASOURCE_UIDS = {"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --", "__expr__"}

# File provisioning as Grafana reads it (pkg/services/provisioning; "Provision Grafana" in its docs).
DATASOURCES_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_KEYS = {"name", "type", "uid", "access", "url", "orgId", "version", "user", "database",
                   "basicAuth", "basicAuthUser", "withCredentials", "isDefault", "correlations",
                   "jsonData", "secureJsonData", "editable"}
DATASOURCE_REQUIRED = ("name", "type", "uid", "access", "url")
DASHBOARDS_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {"name", "orgId", "folder", "folderUid", "type", "disableDeletion",
                 "updateIntervalSeconds", "allowUiUpdates", "options"}
PROVIDER_OPTION_KEYS = {"path", "foldersFromFilesStructure"}


def lost_keys(source, encoded, path: str = "$") -> list[str]:
    """Paths of the keys of ``source`` (nested dicts and lists) that ``encoded`` does not have."""
    if isinstance(source, dict):
        if not isinstance(encoded, dict):
            return [path]
        lost = []
        for key, value in source.items():
            lost += lost_keys(value, encoded[key], f"{path}.{key}") if key in encoded else [f"{path}.{key}"]
        return lost
    if isinstance(source, list):
        if not isinstance(encoded, list) or len(encoded) != len(source):
            return [path]
        return [lost for i, (item, out) in enumerate(zip(source, encoded))
                for lost in lost_keys(item, out, f"{path}[{i}]")]
    return []


def unknown_to_grafana(dashboard: dict) -> list[str]:
    """Paths of the dashboard's keys that the SDK's Dashboard drops: fields Grafana does not know."""
    encoded = json.loads(json.dumps(Dashboard.from_json(dashboard), cls=JSONEncoder))
    return [path for path in lost_keys(dashboard, encoded) if not KNOWN_BEYOND_THE_SDK.fullmatch(path)]


def datasource_refs(node) -> list[dict]:
    """Every `datasource: {type, uid}` reference anywhere in a dashboard (panels, targets, variables, annotations)."""
    if isinstance(node, list):
        return [ref for item in node for ref in datasource_refs(item)]
    if not isinstance(node, dict):
        return []
    own = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
    return own + [ref for value in node.values() for ref in datasource_refs(value)]


def provisioning_files(kind: str) -> list[Path]:
    return sorted((PROVISIONING / kind).glob("*.yml"))


def provisioned_datasources() -> list[dict]:
    return [ds for path in provisioning_files("datasources") for ds in yaml.safe_load(path.read_text())["datasources"]]


def providers() -> list[dict]:
    return [p for path in provisioning_files("dashboards") for p in yaml.safe_load(path.read_text())["providers"]]


def host_path(container_path: str) -> Path | None:
    """The repository path behind a path in the grafana container, through compose/monitoring.yaml's bind mounts."""
    compose = yaml.safe_load((REPO_ROOT / "compose" / "monitoring.yaml").read_text())
    for volume in compose["services"]["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith(".") and (container_path == target or container_path.startswith(target + "/")):
            return (REPO_ROOT / "compose" / source / container_path[len(target):].lstrip("/")).resolve()
    return None


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_dashboard_key_is_one_grafana_knows(path):
    dashboard = load(path)
    assert unknown_to_grafana(dashboard) == [], f"{path.name}: keys Grafana's dashboard schema does not have"

    # The round trip means something only if the queries were read as Prometheus queries.
    decoded = Dashboard.from_json(dashboard)
    panels = [p for p in decoded.panels if p.type_val != "row"] + \
             [p for row in decoded.panels if row.type_val == "row" for p in row.panels or []]
    assert len(panels) == len(data_panels(dashboard))
    for panel in panels:
        assert panel.targets and all(isinstance(t, prometheus.Dataquery) for t in panel.targets), panel.title


def test_a_misspelt_key_is_reported():
    panel = {"type": "timeseries", "title": "CDRs/s", "datasource": {"type": "prometheus", "uid": "prometheus"},
             "gridpos": {"x": 0, "y": 0, "w": 12, "h": 8},
             "targets": [{"refId": "A", "expr": "up", "legendformat": "{{job}}"}],
             "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []}}
    row = {"type": "row", "title": "Row", "collapsed": True, "gridPos": {"x": 0, "y": 8, "w": 24, "h": 1},
           "panels": [{"type": "stat", "title": "Lag", "target": [{"refId": "A", "expr": "up"}]}]}
    dashboard = {"title": "Misspelt", "uid": "misspelt", "schemaVersion": 41, "panels": [panel, row],
                 "templating": {"list": [{"type": "query", "name": "job", "includeall": True}]}}
    assert unknown_to_grafana(dashboard) == [
        "$.panels[0].gridpos",
        "$.panels[0].targets[0].legendformat",
        "$.panels[1].panels[0].target",
        "$.templating.list[0].includeall",
    ]


@pytest.mark.parametrize("path", provisioning_files("datasources"), ids=lambda p: p.name)
def test_datasource_provisioning_has_grafanas_structure(path):
    config = yaml.safe_load(path.read_text())
    assert config.keys() <= DATASOURCES_FILE_KEYS and config["apiVersion"] == 1
    assert config["datasources"]
    for datasource in config["datasources"]:
        where = f"{path.name}: {datasource.get('name')!r}"
        assert datasource.keys() <= DATASOURCE_KEYS, f"{where}: unknown {datasource.keys() - DATASOURCE_KEYS}"
        assert all(isinstance(datasource.get(key), str) and datasource[key] for key in DATASOURCE_REQUIRED), where
        assert datasource["access"] in {"proxy", "direct"}, where
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", datasource["uid"]), where


def test_provisioned_datasources_are_unambiguous():
    datasources = provisioned_datasources()
    assert len({ds["name"] for ds in datasources}) == len(datasources)
    assert len({ds["uid"] for ds in datasources}) == len(datasources)
    assert sum(bool(ds.get("isDefault")) for ds in datasources) <= 1  # Grafana refuses a second default


@pytest.mark.parametrize("path", provisioning_files("dashboards"), ids=lambda p: p.name)
def test_dashboard_provisioning_has_grafanas_structure(path):
    config = yaml.safe_load(path.read_text())
    assert config.keys() <= DASHBOARDS_FILE_KEYS and config["apiVersion"] == 1
    assert config["providers"]
    for provider in config["providers"]:
        where = f"{path.name}: {provider.get('name')!r}"
        assert provider.keys() <= PROVIDER_KEYS, f"{where}: unknown {provider.keys() - PROVIDER_KEYS}"
        assert provider.get("name") and provider.get("type") == "file", where
        assert provider["options"].keys() <= PROVIDER_OPTION_KEYS and provider["options"].get("path"), where


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_referenced_datasource_is_provisioned(path):
    types_by_uid = {ds["uid"]: ds["type"] for ds in provisioned_datasources()}
    refs = [ref for ref in datasource_refs(load(path))
            if ref.get("uid") not in BUILTIN_DATASOURCE_UIDS and not str(ref.get("uid", "")).startswith("$")]
    assert refs
    for ref in refs:
        assert ref.get("uid") in types_by_uid, f"{path.name}: datasource {ref} is not provisioned"
        assert ref.get("type", types_by_uid[ref["uid"]]) == types_by_uid[ref["uid"]], f"{path.name}: {ref}"


def test_the_provider_reads_the_dashboards_folder():
    """compose/monitoring.yaml mounts ../monitoring at /cdr/monitoring; the provider's path must lead back here."""
    assert dashboard_files()
    for provider in providers():
        assert host_path(provider["options"]["path"]) == DASHBOARDS.resolve(), provider["options"]["path"]


# ------------------------------------------------------------------- alert rules (provisioned files)

ALERTING_FILE_KEYS = {"apiVersion", "groups", "deleteRules"}
ALERT_GROUP_KEYS = {"orgId", "name", "folder", "interval", "rules"}


def _alert_rules_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("alert_rules", REPO_ROOT / "monitoring" / "grafana" / "alert_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def provisioned_alert_rules() -> list[dict]:
    return [rule for path in provisioning_files("alerting") for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def test_grafana_alert_rules_are_generated_from_the_prometheus_rules():
    """The provisioned file is what the generator writes from today's Prometheus rules: `make
    grafana-alerts` after changing a rule, or this fails."""
    generator = _alert_rules_module()
    assert generator.OUTPUT.read_text() == generator.render(), "run `make grafana-alerts`"
    from tests.unit.test_alert_rules import alert_rules

    assert [r["title"] for r in provisioned_alert_rules()] == [r["alert"] for r in alert_rules()]


def test_grafana_alert_rules_have_grafanas_structure():
    from grafana_foundation_sdk.models.alerting import Rule

    (path,) = provisioning_files("alerting")
    document = yaml.safe_load(path.read_text())
    assert set(document) <= ALERTING_FILE_KEYS and document["apiVersion"] == 1
    uids = {ds["uid"] for ds in provisioned_datasources()} | BUILTIN_DATASOURCE_UIDS
    for group in document["groups"]:
        assert set(group) <= ALERT_GROUP_KEYS and group["name"] and group["folder"], group.get("name")
        for rule in group["rules"]:
            encoded = json.loads(json.dumps(Rule.from_json(rule), cls=JSONEncoder))
            assert lost_keys(rule, encoded) == [], rule["title"]
            assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", rule["uid"]), rule["uid"]
            assert rule["condition"] in {q["refId"] for q in rule["data"]}, rule["title"]
            for query in rule["data"]:
                assert query["datasourceUid"] in uids, (rule["title"], query["datasourceUid"])
                if query["datasourceUid"] == "prometheus":
                    model = query["model"]
                    decoded = json.loads(json.dumps(prometheus.Dataquery.from_json(model), cls=JSONEncoder))
                    assert lost_keys(model, decoded) == [], rule["title"]
    assert len({r["uid"] for r in provisioned_alert_rules()}) == len(provisioned_alert_rules())
