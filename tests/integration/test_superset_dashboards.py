"""Every chart of the repository's Superset dashboards, run by a real Superset on the local stack.

Superset starts as the optional service of the local stack (`cdr stack up --with superset`), its
one-shot init imports compose/superset/dashboards/, then each chart's saved query is asked of
Superset's REST API (`/api/v1/chart/{id}/data/`, what reports and cache warm-up use), so it runs
against the real Thrift Server (cdr_dw) and PostgreSQL (serving tables) as a dashboard would.

The warehouse charts read `cdr_dw`, the database `make demo` fills. On a stack without one (a fresh
machine), it is made of views over the session's batch run (``batch_layer``, the batch tests' run),
dropped afterwards; a `cdr_dw` that exists must hold rows. The speed layer's tables are created if
missing; they must have rows only when the speed layer has written some.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.integration.thrift import query
from tests.unit.test_superset_assets import chart_uuids_on, load_assets

pytestmark = pytest.mark.stack


def _rows(local_stack, dataset: dict, serving: bool) -> int:
    """Rows of a dataset's table, view or SQL, or -1 when its table or view does not exist."""
    if serving:
        from stack.services.postgres import connect

        with connect(local_stack.settings, local_stack.settings.postgres.serving_db) as conn:
            return _serving_rows(conn, dataset)
    try:
        return query(local_stack, f"SELECT count(*) FROM {dataset['schema']}.{dataset['table_name']}",
                     user="superset-test")[0][0]
    except Exception as exc:  # PyHive raises the server's error for a missing table or database
        if "TABLE_OR_VIEW_NOT_FOUND" in str(exc) or "SCHEMA_NOT_FOUND" in str(exc):
            return -1
        raise


def _serving_source(dataset: dict) -> str:
    """What a PostgreSQL dataset reads, as a FROM item: its SQL (a virtual dataset, such as the serving
    dashboard's seven days of a merged view) or its schema's table or view."""
    if dataset.get("sql"):
        return f"({dataset['sql']}) AS virtual_table"
    return f'"{dataset["schema"] or "public"}"."{dataset["table_name"]}"'


def _serving_rows(conn, dataset: dict) -> int:
    if not dataset.get("sql"):
        qualified = f'{dataset["schema"] or "public"}.{dataset["table_name"]}'
        if conn.execute("SELECT to_regclass(%s)", (qualified,)).fetchone() == (None,):
            return -1
    return conn.execute(f"SELECT count(*) FROM {_serving_source(dataset)}").fetchone()[0]


@pytest.fixture(scope="module")
def assets():
    return load_assets()


@pytest.fixture(scope="module")
def serving_uuids(assets) -> set[str]:
    return {d["uuid"] for d in assets["databases"].values() if d["sqlalchemy_uri"].startswith("postgresql")}


@pytest.fixture(scope="module")
def table_rows(local_stack, assets, serving_uuids, batch_layer) -> dict[str, int]:
    """Rows per dataset uuid, once the warehouse's tables hold rows and the serving tables exist."""
    from streaming.jobs import apply_serving_schema

    apply_serving_schema(local_stack.settings)
    datasets = list(assets["datasets"].values())
    warehouse = {(d["schema"], d["table_name"]) for d in datasets if d["database_uuid"] not in serving_uuids}
    schemas = {schema for schema, _ in warehouse}
    made = schemas - {row[0] for row in query(local_stack, "SHOW DATABASES")}
    for schema in made:  # views over the session's batch run, under the names the dashboards read
        query(local_stack, f"CREATE DATABASE {schema}")
        for _, table in sorted(t for t in warehouse if t[0] == schema):
            query(local_stack, f"CREATE VIEW {schema}.{table} AS SELECT * FROM {batch_layer.prefix}{schema}.{table}")
    try:
        rows = {d["uuid"]: _rows(local_stack, d, d["database_uuid"] in serving_uuids) for d in datasets}
        empty = [f"{d['schema']}.{d['table_name']}" for d in datasets
                 if d["database_uuid"] not in serving_uuids and rows[d["uuid"]] <= 0]
        assert not empty, f"the stack's warehouse has no rows in {empty}: run `make demo`, or drop its databases"
        yield rows
    finally:
        for schema in made:
            query(local_stack, f"DROP DATABASE IF EXISTS {schema} CASCADE")


class SupersetApi:
    """Superset's REST API as the admin (a JWT from /api/v1/security/login)."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url, self.session = url, requests.Session()
        login = self.session.post(f"{url}/api/v1/security/login", timeout=60,
                                  json={"username": username, "password": password, "provider": "db"})
        assert login.ok, login.text
        self.session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

    def get(self, path: str, timeout: float = 60, **params: str) -> requests.Response:
        return self.session.get(f"{self.url}{path}", params=params, timeout=timeout)


@pytest.fixture(scope="module")
def superset(local_stack, table_rows) -> SupersetApi:
    """The stack's Superset, after its init imported the repository's assets."""
    from stack.services.superset import ADMIN_PASSWORD_ENV, Superset

    t0 = time.monotonic()
    timings = local_stack.up(with_optional=[Superset.name])  # starts it (init included) unless it runs already
    service = Superset(local_stack.settings, local_stack.paths)
    if not next(t.started for t in timings if t.service == Superset.name):
        service.prepare()  # it ran already: the init again, so that it serves this checkout's files
    print(f"Superset up and initialised in {time.monotonic() - t0:.1f} s")
    return SupersetApi(service.url, local_stack.settings.superset.admin_user, service.secret(ADMIN_PASSWORD_ENV))


def _ids_by_uuid(superset, resource: str) -> dict[str, int]:
    ids, page = {}, 0
    while True:
        answer = superset.get(f"/api/v1/{resource}/", q=f"(columns:!(id,uuid),page:{page},page_size:100)")
        assert answer.ok, answer.text
        result = answer.json()["result"]
        ids |= {row["uuid"]: row["id"] for row in result}
        if len(result) < 100:
            return ids
        page += 1


def _expected_columns(chart: dict) -> tuple[list[str], bool]:
    """The columns a chart's data must have, and whether more follow (a pivot adds one per series)."""
    query_ = json.loads(chart["query_context"])["queries"][0]
    pivot = next((p["options"] for p in query_["post_processing"] if p["operation"] == "pivot"), None)
    if pivot:
        return pivot["index"], True
    labels = [c if isinstance(c, str) else c["label"] for c in query_["columns"]]
    metrics = query_.get("metrics") or []  # none in a raw-records table
    return labels + [m if isinstance(m, str) else m["label"] for m in metrics], False


def chart_failures(superset, assets, must_have_rows) -> list[str]:
    """Each chart's saved query asked of Superset; what is wrong with the answers (``must_have_rows``:
    dataset -> whether its chart must return rows). Shared with the container suite."""
    datasets = {d["uuid"]: d for d in assets["datasets"].values()}
    ids = _ids_by_uuid(superset, "chart")
    failures = []
    for name, chart in assets["charts"].items():
        assert chart["uuid"] in ids, f"{name} was not imported"
        answer = superset.get(f"/api/v1/chart/{ids[chart['uuid']]}/data/", timeout=600, force="true")
        if not answer.ok:
            failures.append(f"{name}: HTTP {answer.status_code} {answer.text[:500]}")
            continue
        result = answer.json()["result"][0]
        expected, more = _expected_columns(chart)
        columns = result["colnames"][:len(expected)] if more else result["colnames"]
        empty = result["rowcount"] == 0 and not result["colnames"]  # Superset names no column of no rows
        wrong_columns = columns != expected or (more and len(result["colnames"]) < 2)
        if result["status"] != "success" or (wrong_columns and not empty) \
                or (must_have_rows(datasets[chart["dataset_uuid"]]) and result["rowcount"] == 0):
            failures.append(f"{name}: status {result['status']}, columns {result['colnames']} (expected {expected}"
                            f"{' and series' if more else ''}), {result['rowcount']} rows; {result.get('error')}")
    return failures


def test_every_chart_answers_from_the_real_databases(superset, assets, table_rows, serving_uuids):
    failures = chart_failures(superset, assets, lambda dataset: dataset["database_uuid"] not in serving_uuids
                              or table_rows[dataset["uuid"]] > 0)
    assert not failures, "\n".join(failures)


def test_the_postgresql_datasets_have_the_columns_of_the_database(local_stack, assets, serving_uuids, table_rows):
    """Every PostgreSQL dataset (the speed layer's tables, the serving layer's merged views and the
    serving dashboard's seven days of them) names the columns its table, view or SQL gives, in their
    order; its calculated columns and saved metrics are valid SQL over them. Checked on the real
    database, since serving/schema.sql is what the unit test reads."""
    from stack.services.postgres import connect

    datasets = [d for d in assets["datasets"].values() if d["database_uuid"] in serving_uuids]
    assert any(d["schema"] == "serving" for d in datasets)
    with connect(local_stack.settings, local_stack.settings.postgres.serving_db) as conn:
        for dataset in datasets:
            name, source = dataset["table_name"], _serving_source(dataset)
            assert table_rows[dataset["uuid"]] >= 0, f"{name}: its table or view does not exist"
            cursor = conn.execute(f"SELECT * FROM {source} LIMIT 0")
            physical = [c["column_name"] for c in dataset["columns"] if not c["expression"]]
            assert physical == [d.name for d in cursor.description], name
            for expression in [c["expression"] for c in dataset["columns"] if c["expression"]] + \
                    [m["expression"] for m in dataset["metrics"]]:
                conn.execute(f"SELECT {expression} FROM {source} LIMIT 0")  # raises on an invalid expression


def test_every_dashboard_shows_its_charts(superset, assets):
    chart_ids, dashboard_ids = _ids_by_uuid(superset, "chart"), _ids_by_uuid(superset, "dashboard")
    for name, dashboard in assets["dashboards"].items():
        assert dashboard["uuid"] in dashboard_ids, f"{name} was not imported"
        answer = superset.get(f"/api/v1/dashboard/{dashboard_ids[dashboard['uuid']]}/charts")
        assert answer.ok, answer.text
        assert {c["id"] for c in answer.json()["result"]} == {chart_ids[u] for u in chart_uuids_on(dashboard)}, name
        page = superset.get(f"/superset/dashboard/{dashboard['slug']}/")
        assert page.status_code == 200, name


def test_the_databases_point_at_this_stack_without_a_stored_password(superset, local_stack):
    ip, s = local_stack.settings.stack.bind_ip, local_stack.settings
    expected = {f"hive://{ip}:{s.hive.thrift_port}/default",
                f"postgresql+psycopg2://{s.postgres.user}@{ip}:{s.postgres.port}/{s.postgres.serving_db}"}
    found = set()
    for database_id in _ids_by_uuid(superset, "database").values():
        answer = superset.get(f"/api/v1/database/{database_id}/connection")
        assert answer.ok, answer.text
        found.add(answer.json()["result"]["sqlalchemy_uri"])
    assert expected <= found
