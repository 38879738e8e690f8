"""Superset on the container stack: every dashboard of the repository imported, every chart's
query answered by the real Thrift Server and PostgreSQL (the checks of the local stack's suite,
tests/integration/test_superset_dashboards.py, against this stack's Superset)."""

from __future__ import annotations

import pytest

from tests.integration.test_superset_dashboards import SupersetApi, _expected_columns, _ids_by_uuid
from tests.unit.test_superset_assets import chart_uuids_on, load_assets


@pytest.fixture(scope="module")
def superset(batch_run) -> SupersetApi:
    env = batch_run.env
    return SupersetApi(f"http://127.0.0.1:{env.get('SUPERSET_PORT') or 8088}",
                       env.get("SUPERSET_ADMIN_USER") or "admin", env["SUPERSET_ADMIN_PASSWORD"])


def test_every_dashboard_is_listed_with_its_charts(superset):
    assets = load_assets()
    chart_ids, dashboard_ids = _ids_by_uuid(superset, "chart"), _ids_by_uuid(superset, "dashboard")
    assert {d["uuid"] for d in assets["dashboards"].values()} <= set(dashboard_ids)
    for name, dashboard in assets["dashboards"].items():
        answer = superset.get(f"/api/v1/dashboard/{dashboard_ids[dashboard['uuid']]}/charts")
        assert answer.ok, answer.text
        assert {c["id"] for c in answer.json()["result"]} == {chart_ids[u] for u in chart_uuids_on(dashboard)}, name


def test_every_chart_returns_data(superset):
    assets = load_assets()
    serving = {d["uuid"] for d in assets["databases"].values() if d["sqlalchemy_uri"].startswith("postgresql")}
    datasets = {d["uuid"]: d for d in assets["datasets"].values()}
    ids = _ids_by_uuid(superset, "chart")
    failures = []
    for name, chart in assets["charts"].items():
        answer = superset.get(f"/api/v1/chart/{ids[chart['uuid']]}/data/", timeout=600, force="true")
        if not answer.ok:
            failures.append(f"{name}: HTTP {answer.status_code} {answer.text[:300]}")
            continue
        result = answer.json()["result"][0]
        expected, more = _expected_columns(chart)
        columns = result["colnames"][:len(expected)] if more else result["colnames"]
        # Warehouse charts must show the batch run's rows; live charts may be empty before a stream.
        must_have_rows = datasets[chart["dataset_uuid"]]["database_uuid"] not in serving
        if result["status"] != "success" or columns != expected or (must_have_rows and result["rowcount"] == 0):
            failures.append(f"{name}: {result['status']}, columns {result['colnames']}, {result['rowcount']} rows")
    assert not failures, "\n".join(failures)
