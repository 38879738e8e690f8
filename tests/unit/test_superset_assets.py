"""The Superset assets kept in compose/superset/dashboards/ (an export's YAML tree), checked without Superset.

Superset imports a tree whose references are broken without complaint (a chart whose dataset is
missing is skipped, a dashboard cell whose chart is missing stays empty), so each reference is
checked here; tests/integration/test_superset_dashboards.py runs every chart on the real services.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "compose" / "superset" / "dashboards"
KINDS = ("databases", "datasets", "charts", "dashboards")


def load_assets(root: Path = ASSETS) -> dict[str, dict[str, dict]]:
    """kind -> relative path -> parsed YAML, for every kind of asset of the tree."""
    return {kind: {path.relative_to(root).as_posix(): yaml.safe_load(path.read_text())
                   for path in sorted((root / kind).rglob("*.yaml"))} for kind in KINDS}


def chart_uuids_on(dashboard: dict) -> list[str]:
    return [item["meta"]["uuid"] for item in dashboard["position"].values()
            if isinstance(item, dict) and item.get("type") == "CHART"]


def query_references(chart: dict) -> tuple[set[str], set[str]]:
    """(dataset columns, saved metrics) the chart's saved query context uses."""
    columns, metrics = set(), set()
    for query in json.loads(chart["query_context"])["queries"]:
        for column in query["columns"]:
            columns.add(column if isinstance(column, str) else column["sqlExpression"])
        for metric in query["metrics"]:
            if isinstance(metric, str):
                metrics.add(metric)
            else:
                columns.add(metric["column"]["column_name"])
        columns |= {f["col"] for f in query["filters"]}
    return columns, metrics


@pytest.fixture(scope="module")
def assets() -> dict[str, dict[str, dict]]:
    return load_assets()


def _by_uuid(assets, kind: str) -> dict[str, dict]:
    return {config["uuid"]: config for config in assets[kind].values()}


def test_the_tree_is_an_assets_export(assets):
    metadata = yaml.safe_load((ASSETS / "metadata.yaml").read_text())
    assert metadata["type"] == "assets" and metadata["version"] == "1.0.0"
    assert len(assets["dashboards"]) >= 3 and all(assets[kind] for kind in KINDS)
    for kind in KINDS:
        for config in assets[kind].values():
            assert config["version"] == "1.0.0"


def test_uuids_are_unique_across_the_tree(assets):
    counts = Counter(config["uuid"] for kind in KINDS for config in assets[kind].values())
    assert [uuid for uuid, n in counts.items() if n > 1] == []


def test_every_reference_resolves(assets):
    databases, datasets, charts = (_by_uuid(assets, kind) for kind in ("databases", "datasets", "charts"))
    for name, dataset in assets["datasets"].items():
        assert dataset["database_uuid"] in databases, name
    for name, chart in assets["charts"].items():
        assert chart["dataset_uuid"] in datasets, name
    placed = set()
    for name, dashboard in assets["dashboards"].items():
        on_it = chart_uuids_on(dashboard)
        assert on_it and set(on_it) <= set(charts), name
        placed |= set(on_it)
    assert placed == set(charts), "charts on no dashboard"


def test_charts_use_only_columns_and_metrics_of_their_dataset(assets):
    datasets = _by_uuid(assets, "datasets")
    for name, chart in assets["charts"].items():
        dataset = datasets[chart["dataset_uuid"]]
        columns, metrics = query_references(chart)
        assert columns <= {c["column_name"] for c in dataset["columns"]}, name
        assert metrics <= {m["metric_name"] for m in dataset["metrics"]}, name
        assert json.loads(chart["query_context"])["form_data"]["viz_type"] == chart["viz_type"] == \
            chart["params"]["viz_type"], name


def test_no_password_is_kept(assets):
    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from keys(value)

    for kind in KINDS:
        for name, config in assets[kind].items():
            assert not [k for k in keys(config) if re.search(r"(?i)passw|secret", k)], name
    for name, database in assets["databases"].items():
        assert urlsplit(database["sqlalchemy_uri"]).password is None, name


def test_one_database_per_backend_that_the_init_points_at_its_stack(assets):
    """bootstrap.py gives each database this stack's address by backend: one hive, one postgresql."""
    backends = sorted(urlsplit(d["sqlalchemy_uri"]).scheme.split("+")[0] for d in assets["databases"].values())
    assert backends == ["hive", "postgresql"]
    bootstrap = (REPO / "compose" / "superset" / "bootstrap.py").read_text()
    assert '{"hive": "SUPERSET_HIVE_URI", "postgresql": "SUPERSET_SERVING_URI"}' in bootstrap


def test_serving_datasets_match_the_speed_layers_tables(assets):
    ddl = (REPO / "streaming" / "serving.sql").read_text()
    tables = {name: re.findall(r"^\s+(\w+)\s+[A-Z]", body, re.M)
              for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", ddl, re.S)}
    databases = _by_uuid(assets, "databases")
    for name, dataset in assets["datasets"].items():
        if urlsplit(databases[dataset["database_uuid"]]["sqlalchemy_uri"]).scheme.startswith("postgresql"):
            columns = [c["column_name"] for c in dataset["columns"]]
            assert columns == [c for c in tables[dataset["table_name"]] if c != "PRIMARY"], name
