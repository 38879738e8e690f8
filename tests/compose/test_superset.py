"""Superset on the container stack: every dashboard of the repository imported, every chart's
query answered by the real Thrift Server and PostgreSQL (the checks of the local stack's suite,
tests/integration/test_superset_dashboards.py, against this stack's Superset)."""

from __future__ import annotations

import pytest

from tests.integration.test_superset_dashboards import SupersetApi, _ids_by_uuid, chart_failures
from tests.unit.test_superset_assets import chart_uuids_on, load_assets


@pytest.fixture(scope="module")
def superset(batch_run, stream_run) -> SupersetApi:
    """Superset once both layers have written: the warehouse and the live tables have rows."""
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
    # Every chart shows rows: the batch run filled the warehouse, the streamed day the live tables.
    failures = chart_failures(superset, assets, lambda dataset: True)
    assert not failures, "\n".join(failures)
