"""Grafana without Grafana: every panel query of monitoring/grafana/dashboards/ run against the
container stack's real Prometheus (the checks of tests/integration/test_grafana_dashboards.py, here
with `local_stack` standing for this stack: same ports, same exporters). The provisioning files are
validated against Grafana's schemas by tests/unit/test_grafana_dashboards.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cdr.settings import get_settings
from tests.integration.test_grafana_dashboards import *  # noqa: F401,F403  (the tests themselves)

pytestmark = pytest.mark.compose   # not the local stack's `stack` mark the module above sets


@pytest.fixture(scope="module")
def local_stack(container_stack, stream_run):
    """This stack, after a day was streamed through it: the detection job's own counters (alerts per
    scenario, dead letters) exist once it has counted something."""
    return SimpleNamespace(settings=get_settings())
