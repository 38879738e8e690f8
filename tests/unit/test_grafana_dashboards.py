"""The Grafana dashboards of monitoring/grafana/dashboards/, without a stack.

Structure (ids, units, datasource, variables, layout), that the container stack's provisioning
finds them, that every metric an alert rule watches is on a dashboard, and that every query parses
(promtool parses PromQL only inside a rule file, so the queries are checked as recording rules).
Whether the queries return data from the real metrics is tests/integration/test_grafana_dashboards.py.

The helpers here are shared with that integration test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cdr.settings import REPO_ROOT

DASHBOARDS = REPO_ROOT / "monitoring" / "grafana" / "dashboards"
PROVISIONING = REPO_ROOT / "compose" / "grafana" / "provisioning"
RULES = REPO_ROOT / "monitoring" / "prometheus" / "rules"

# Grafana's own variables, and what they stand for when a query is run outside Grafana
# ($__rate_interval is at least 4 scrape intervals of 10 s).
BUILTIN_VARIABLES = {"__rate_interval": "1m", "__interval": "30s", "__range": "1h"}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                   "unless", "offset", "inf", "nan"}


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def data_panels(dashboard: dict) -> list[dict]:
    """Every panel with queries: top-level ones and those inside collapsed rows; not the rows."""
    out = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def targets(dashboard: dict) -> list[tuple[dict, dict]]:
    return [(panel, target) for panel in data_panels(dashboard) for target in panel.get("targets", [])]


def prometheus_uid() -> str:
    config = yaml.safe_load((PROVISIONING / "datasources" / "cdr.yml").read_text())
    (uid,) = [ds["uid"] for ds in config["datasources"] if ds["type"] == "prometheus"]
    return uid


def grafana_regex_escape(value: str) -> str:
    """What Grafana puts in a Prometheus query for one value of a multi-value variable."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value)


def substitute(expr: str, values: dict[str, str]) -> str:
    """The query as Grafana sends it, with ``values`` for the dashboard's variables (already escaped)."""
    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        return values[name]
    return VARIABLE.sub(one, expr)


def all_values(dashboard: dict) -> dict[str, str]:
    """Each variable at "All" (the dashboards' default), i.e. its allValue."""
    return {v["name"]: v["allValue"] for v in dashboard["templating"]["list"]}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not those matched only through __name__)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)                    # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                   # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in PROMQL_KEYWORDS:
            names.add(name)
    return names


def selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """(metric, {label: 'op"value"'}) for each metric{...} selector of an expression."""
    out = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", expr):
        matchers = dict(
            (m.group(1), m.group(2) + m.group(3))
            for m in re.finditer(r'(\w+)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")', match.group(2))
        )
        out.append((match.group(1), matchers))
    for name in metric_names(expr):
        if not re.search(rf"(?<![\w:]){re.escape(name)}\s*\{{", expr):
            out.append((name, {}))
    return out


def rule_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend((rule["alert"], rule["expr"]) for rule in group["rules"] if "alert" in rule)
    return out


# ------------------------------------------------------------------------------------------ tests


def test_the_dashboards_exist():
    titles = {load(path)["title"] for path in dashboard_files()}
    assert {"CDR platform overview", "Speed layer"} <= titles


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_structure(path):
    dashboard = load(path)
    uid = prometheus_uid()
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dashboard["uid"])
    assert dashboard["title"] and dashboard["schemaVersion"] >= 39
    assert "id" not in dashboard or dashboard["id"] is None  # provisioning assigns it

    ids = [p["id"] for p in dashboard["panels"]] + [p["id"] for row in dashboard["panels"] for p in row.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"

    panels = data_panels(dashboard)
    assert panels
    for panel in panels:
        where = f"{path.name}: panel {panel['id']} {panel.get('title')!r}"
        assert panel.get("title"), where
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
        assert panel.get("targets"), f"{where}: no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), where
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{where}: target {target['refId']} has no expr"
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], where
    for row in (p for p in dashboard["panels"] if p["type"] == "row"):
        assert row.get("title") and "targets" not in row


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_panels_fit_the_grid_without_overlapping(path):
    cells: dict[tuple[int, int], int] = {}
    dashboard = load(path)
    for panel in dashboard["panels"] + [p for row in dashboard["panels"] for p in row.get("panels", [])]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_variables_are_defined_and_substitutable(path):
    dashboard = load(path)
    variables = dashboard["templating"]["list"]
    defined = {v["name"] for v in variables}
    for variable in variables:
        assert variable["type"] == "query" and variable["datasource"]["uid"] == prometheus_uid()
        query = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
        assert re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query), query
        # "All" must be a regex the queries can use as it is (they match with =~).
        assert variable["includeAll"] and variable["allValue"] == ".*"
    for panel, target in targets(dashboard):
        used = {m.group(1) or m.group(2) for m in VARIABLE.finditer(target["expr"])}
        assert used <= defined | set(BUILTIN_VARIABLES), f"{panel['title']!r}: {used - defined}"
        for name in used & defined:
            assert re.search(rf'=~\s*"[^"]*\${name}\b', target["expr"]), \
                f"{panel['title']!r}: multi-value ${name} must be matched with =~"
        assert "$" not in substitute(target["expr"], all_values(dashboard))


def test_every_alert_rule_metric_is_on_a_dashboard():
    on_dashboards = [sel for path in dashboard_files() for _, t in targets(load(path)) for sel in selectors(t["expr"])]
    rules = rule_exprs()
    assert rules
    for alert, expr in rules:
        for metric, matchers in selectors(expr):
            assert any(name == metric and matchers.items() <= shown.items() for name, shown in on_dashboards), \
                f"{alert}: {metric}{matchers} is on no dashboard"


def test_metric_name_extraction():
    """The helper the rule check above relies on."""
    expr = 'sum by (instance) (rate(kafka_server_x_count{name="A", topic=~"$topic"}[5m])) / on (instance) up or vector(0)'
    assert metric_names(expr) == {"kafka_server_x_count", "up"}
    assert selectors('max(fs_namesystem_x) > 0') == [("fs_namesystem_x", {})]
    assert selectors('up{availability="always-on"} == 0') == [("up", {"availability": '="always-on"'})]


def test_provisioning_points_at_the_dashboards():
    """The container stack mounts ../monitoring at /cdr/monitoring; the provider reads the dashboards there."""
    compose = yaml.safe_load((REPO_ROOT / "compose" / "monitoring.yaml").read_text())
    mounts = {v.split(":")[0]: v.split(":")[1] for v in compose["services"]["grafana"]["volumes"]}
    assert mounts["../monitoring"] == "/cdr/monitoring"
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "cdr.yml").read_text())["providers"]
    path = provider["options"]["path"]
    assert path == "/cdr/monitoring/" + DASHBOARDS.relative_to(REPO_ROOT / "monitoring").as_posix()
    # With foldersFromFilesStructure Grafana would ignore `folder` and file these under General.
    assert provider["folder"] and not provider["options"].get("foldersFromFilesStructure", False)


def test_dashboard_uids_and_titles_are_unique():
    dashboards = [load(path) for path in dashboard_files()]
    assert len({d["uid"] for d in dashboards}) == len(dashboards)
    assert len({d["title"] for d in dashboards}) == len(dashboards)


def test_every_query_parses(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make setup` (cdr stack install) installs it (Debian package prometheus)"
    rules = []
    for path in dashboard_files():
        dashboard = load(path)
        for panel, target in targets(dashboard):
            record = f"dashboard:{dashboard['uid'].replace('-', '_')}_panel_{panel['id']}_{target['refId']}"
            rules.append({"record": record, "expr": substitute(target["expr"], all_values(dashboard))})
    rule_file = tmp_path / "dashboards.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
