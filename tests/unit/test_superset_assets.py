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
        for metric in query.get("metrics") or []:  # a raw-records table has none
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


def _postgresql_datasets(assets) -> dict[str, dict]:
    databases = _by_uuid(assets, "databases")
    return {name: dataset for name, dataset in assets["datasets"].items()
            if urlsplit(databases[dataset["database_uuid"]]["sqlalchemy_uri"]).scheme.startswith("postgresql")}


def test_serving_datasets_match_the_speed_layers_tables(assets):
    ddl = (REPO / "streaming" / "serving.sql").read_text()
    tables = {name: re.findall(r"^\s+(\w+)\s+[A-Z]", body, re.M)
              for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", ddl, re.S)}
    datasets = _postgresql_datasets(assets)
    assert {d["schema"] for d in datasets.values()} <= {"public", "serving"}
    for name, dataset in datasets.items():
        if dataset["schema"] == "public":  # the speed layer's own tables
            columns = [c["column_name"] for c in dataset["columns"]]
            assert columns == [c for c in tables[dataset["table_name"]] if c != "PRIMARY"], name


# --- the serving layer's merged views (serving/schema.sql) ----------------------------------------

SERVING_SQL = REPO / "serving" / "schema.sql"
# The seven days of the serving dashboard: those ending with the latest hour the merged views hold.
SEVEN_DAYS = "(SELECT hour_start::DATE - 6 FROM serving.latest_hour)"


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [p.strip() for p in [*parts, text[start:]]]


def _outer_select(query: str) -> tuple[list[str], str]:
    """The select list of a query's outermost SELECT (after any WITH), and the text after its FROM
    (empty for a SELECT of scalar subqueries only)."""
    depth, start = 0, None
    for token in re.finditer(r"\(|\)|\bSELECT\b|\bFROM\b", query, re.I):
        word = token.group(0).upper()
        depth += {"(": 1, ")": -1}.get(word, 0)
        if depth == 0 and word == "SELECT" and start is None:
            start = token.end()
        elif depth == 0 and word == "FROM" and start is not None:
            return _split_top_level(query[start:token.start()]), query[token.end():]
    assert start is not None, f"no SELECT in {query!r}"
    return _split_top_level(query[start:]), ""


def _item_name(item: str) -> str:
    alias = re.search(r"\bAS\s+(\w+)$", item, re.I)
    return alias.group(1) if alias else re.search(r"(\w+)$", item).group(1)


def serving_views(ddl: str) -> dict[str, list[str]]:
    """Columns of every view of serving/schema.sql, read from the select list of its first branch
    (``alias.*`` expanded from the table the alias names)."""
    ddl = re.sub(r"--[^\n]*", "", ddl)
    tables = {name: [c for c in re.findall(r"^\s+(\w+)\s+[A-Z]", body, re.M) if c != "PRIMARY"]
              for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS serving\.(\w+) \((.*?)\n\);", ddl, re.S)}
    views = {}
    for name, body in re.findall(r"CREATE OR REPLACE VIEW serving\.(\w+) AS\n(.*?);", ddl, re.S):
        branches = [_outer_select(branch) for branch in re.split(r"\bUNION ALL\b", body)]
        assert len({len(items) for items, _ in branches}) == 1, f"{name}: branches of different widths"
        items, rest = branches[0]
        columns = []
        for item in items:
            star = re.fullmatch(r"(\w+)\.\*", item)
            if star:
                columns += tables[re.search(rf"serving\.(\w+)\s+{star.group(1)}\b", rest).group(1)]
            else:
                columns.append(_item_name(item))
        views[name] = columns
    return views


def test_the_view_parser_reads_every_view_of_the_serving_schema():
    views = serving_views(SERVING_SQL.read_text())
    assert {"cell_hour", "service_hour", "subscriber_day", "revenue_day", "incidents", "layer_status"} <= set(views)
    for name, columns in views.items():
        assert columns and len(columns) == len(set(columns)), (name, columns)
        assert all(re.fullmatch(r"[a-z_]+", c) for c in columns), (name, columns)
    assert views["subscriber_day"][:2] == ["day", "subscriber_key"] and views["subscriber_day"][-1] == "source_time"


def test_serving_view_datasets_have_the_columns_of_their_views(assets):
    """A dataset of schema `serving` reads one merged view: its table, or the view its SQL selects
    from (every column of it, by name, in the view's order); the dataset's other columns are
    calculated (an expression over those)."""
    views = serving_views(SERVING_SQL.read_text())
    datasets = {n: d for n, d in _postgresql_datasets(assets).items() if d["schema"] == "serving"}
    assert datasets
    for name, dataset in datasets.items():
        physical = [c["column_name"] for c in dataset["columns"] if not c["expression"]]
        calculated = [c["column_name"] for c in dataset["columns"] if c["expression"]]
        if dataset["sql"]:
            items, rest = _outer_select(dataset["sql"])
            view = re.match(r"\s*serving\.(\w+)\b", rest).group(1)
            assert [_item_name(i) for i in items] == physical, name
        else:
            view = dataset["table_name"]
        assert view in views, f"{name} reads {view}, not a view of serving/schema.sql"
        assert physical == views[view], name
        assert not set(calculated) & set(physical), name
        assert dataset["main_dttm_col"] in {c["column_name"] for c in dataset["columns"] if c["is_dttm"]} | {None}, name


def test_the_serving_dashboard_shows_the_same_seven_days_in_every_chart(assets):
    """Every chart of the serving dashboard reads a merged view, and each windowed dataset keeps the
    same seven days: those ending with the latest hour of serving.cell_hour (serving.latest_hour: the
    data's days, which a relative time range such as "Last week" would miss on a replayed dataset)."""
    datasets, charts = _by_uuid(assets, "datasets"), _by_uuid(assets, "charts")
    [dashboard] = [d for d in assets["dashboards"].values() if d["slug"] == "cdr-serving"]
    for uuid in chart_uuids_on(dashboard):
        dataset = datasets[charts[uuid]["dataset_uuid"]]
        assert dataset["schema"] == "serving", charts[uuid]["slice_name"]
        if dataset["sql"]:
            assert SEVEN_DAYS in " ".join(dataset["sql"].split()), dataset["table_name"]
    kinds = {item["type"] for item in dashboard["position"].values() if isinstance(item, dict) and "type" in item}
    assert "MARKDOWN" in kinds
    [time_filter] = dashboard["metadata"]["native_filter_configuration"]
    assert time_filter["filterType"] == "filter_time" and time_filter["id"].startswith("NATIVE_FILTER-")
    assert time_filter["scope"] == {"rootPath": ["ROOT_ID"], "excluded": []}


def test_native_filters_name_existing_datasets(assets):
    datasets = _by_uuid(assets, "datasets")
    for name, dashboard in assets["dashboards"].items():
        for native in dashboard["metadata"].get("native_filter_configuration", []):
            assert native["type"] == "NATIVE_FILTER" and native["scope"]["rootPath"] == ["ROOT_ID"], name
            for target in native["targets"]:
                assert target.get("datasetUuid") is None or target["datasetUuid"] in datasets, name
