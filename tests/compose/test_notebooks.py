"""JupyterLab on the container stack executes the platform's notebooks top to bottom, in its own
kernel environment, against the stack's warehouse and serving database."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("notebook", ["01_warehouse_eda.ipynb", "02_speed_layer.ipynb"])
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
