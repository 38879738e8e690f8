"""The speed layer on the container stack: a day with labelled scenarios streamed through the
three brokers into the Flink jobs the stack submitted, alerts into PostgreSQL, scored."""

from __future__ import annotations

import requests


def test_the_stack_submitted_the_speed_layer_jobs(container_stack):
    port = container_stack.env.get("FLINK_REST_PORT") or 8081
    jobs = requests.get(f"http://127.0.0.1:{port}/jobs/overview", timeout=10).json()["jobs"]
    running = sorted(job["name"] for job in jobs if job["state"] == "RUNNING")
    assert len(running) == 2, running   # bronze landing and detection


def test_stream_alerts_reach_postgresql_and_score(stream_run):
    done = stream_run.cdr("stream", "score", "--wait", "300", "--min-score", "0.9", check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    scenarios = stream_run.psql("SELECT count(DISTINCT scenario), count(*) FROM alerts")[0]
    assert scenarios[0] >= 5 and scenarios[1] >= scenarios[0], scenarios
