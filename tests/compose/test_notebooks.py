"""JupyterLab on the container stack executes the platform's notebooks top to bottom, in its own
kernel environment, against the stack's warehouse and serving database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Every notebook of the repository (the image carries them all, in /opt/cdr/notebooks): the warehouse
# EDA, the speed layer and the serving layer, which reads the days the batch run published.
NOTEBOOKS = sorted(path.name for path in (Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_every_notebook_of_the_repository_is_executed():
    assert {"01_warehouse_eda.ipynb", "02_speed_layer.ipynb", "03_serving_layer.ipynb"} <= set(NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_jupyterlab_executes_the_notebook(batch_run, stream_run, notebook):
    out = f"/tmp/executed-{notebook}"
    done = batch_run.compose("exec", "-T", "-w", "/opt/cdr/notebooks", "jupyter", "jupyter", "nbconvert", "--to",
                             "notebook", "--execute", "--ExecutePreprocessor.timeout=600", "--output", out, notebook,
                             timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    executed = json.loads(batch_run.compose("exec", "-T", "jupyter", "cat", out).stdout)
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, errors
    # Every code cell ran, and the notebook drew its figures.
    assert all(c.get("execution_count") for c in code)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
