"""notebooks/03_serving_layer.ipynb, executed as JupyterLab runs it, against the local stack's serving
layer: the days this session's batch run published (``batch_layer``, 2026-01-05/06), and whatever
else the shared `cdr_serving` holds (a demo's days, the hours the stream tests wrote).

Each count the notebook prints is checked against the same question asked of PostgreSQL directly,
after the run (nothing else writes to the serving layer while a test runs), and every section with
rows must draw its figure. The notebook's seven days end with the latest hour the merged views hold.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _execute(name: str) -> dict:
    """Runs notebooks/<name> top to bottom in a fresh python3 kernel of this virtualenv, its working
    directory notebooks/ as in JupyterLab; fails on the first cell that raises. Returns the code
    cells by tag."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=600, startup_timeout=120,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute(env=dict(os.environ))
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert all(cell.execution_count for cell in code)
    return {tag: cell for cell in code for tag in cell.metadata.get("tags", [])}


def _printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _figures(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.outputs)


def _number(printed: str, label: str) -> int:
    found = re.search(rf"^{re.escape(label)}: (\d+)\b", printed, re.M)
    assert found, f"no '{label}: N' line in:\n{printed}"
    return int(found.group(1))


def test_the_serving_notebook_reports_what_the_merged_views_hold(batch_layer, local_stack):
    from serving import store

    cells = _execute("03_serving_layer.ipynb")
    with store.connect(local_stack.settings) as conn:
        published = {day for (day,) in conn.execute("SELECT day FROM serving.published_day")}
        last = conn.execute("SELECT max(hour_start)::DATE FROM serving.cell_hour").fetchone()[0]
        first, end = last - dt.timedelta(days=6), last + dt.timedelta(days=1)
        days = conn.execute("SELECT hour_start::DATE, source FROM serving.cell_hour"
                            " WHERE hour_start >= %s AND hour_start < %s GROUP BY 1, 2", (first, end)).fetchall()
        hourly = [source for _, source in conn.execute(
            "SELECT hour_start, string_agg(DISTINCT source, ',') FROM serving.cell_hour"
            " WHERE hour_start >= %s AND hour_start < %s GROUP BY 1 ORDER BY 1", (first, end))]
        incidents = dict(conn.execute("SELECT status, count(*) FROM serving.incidents WHERE day >= %s AND day <= %s"
                                      " GROUP BY 1", (first, last)).fetchall())
        reconciled = conn.execute("SELECT day, count(*) FROM serving.layer_reconciliation GROUP BY day"
                                  " ORDER BY day").fetchall()
    assert batch_layer.start in published  # the session's batch run published its first day

    assert f"window: {first} to {last} " in _printed(cells["setup"])

    status = _printed(cells["status"])
    assert _number(status, "days published") == len(published)
    assert _number(status, "days") == len(days) > 0
    layers = {source: len({day for day, s in days if s == source}) for source in ("batch", "speed")}
    assert f"sources: batch {layers['batch']} day(s), speed {layers['speed']} day(s)" in status
    assert _number(status, "days read from both layers") == len(days) - len({day for day, _ in days})

    merged = _printed(cells["merged"])
    assert _number(merged, "hours") == len(hourly) > 0
    assert _figures(cells["merged"]) == 1
    changes = sum(a != b for a, b in zip(hourly, hourly[1:]))
    assert len(re.findall(r"^boundary: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(", merged, re.M)) == changes, merged
    assert ("boundary: none" in merged) == (changes == 0)

    reconciliation = _printed(cells["reconciliation"])
    assert _number(reconciliation, "reconciled days") == len(reconciled)
    latest = reconciled[-1][1] if reconciled else 0
    assert _number(reconciliation, "reconciliation") == latest
    assert _figures(cells["reconciliation"]) == (1 if latest else 0)
    if reconciled:
        assert f"(day {reconciled[-1][0]})" in reconciliation

    printed = _printed(cells["incidents"])
    assert _number(printed, "incidents") == sum(incidents.values())
    for state, n in incidents.items():
        assert _number(printed, f"incidents {state}") == n
    assert _figures(cells["incidents"]) == (1 if incidents else 0)
    if first <= batch_layer.start <= last:  # the seven days hold this session's batch days: their anomalies
        assert sum(incidents.values()) > 0
