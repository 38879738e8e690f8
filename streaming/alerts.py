"""Reading the alerts back from PostgreSQL and the producer's scenario labels, for scoring."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cdr.errors import CdrError
from cdr.scoring import Detection
from cdr.settings import Settings

UTC = dt.timezone.utc


def read_alerts(settings: Settings, since: dt.datetime | None = None) -> list[Detection]:
    import psycopg

    pg = settings.postgres
    with psycopg.connect(host="127.0.0.1", port=pg.port, user=pg.user, dbname=pg.serving_db) as conn:
        rows = conn.execute(
            "SELECT scenario, entity_id, window_start, window_end FROM alerts"
            + (" WHERE detected_at >= %s" if since else ""), (since,) if since else ()).fetchall()
    return [Detection(s, e, ws.replace(tzinfo=UTC), we.replace(tzinfo=UTC)) for s, e, ws, we in rows]


def read_labels(path: Path) -> list[dict]:
    """Labels as the producer writes them (JSON Lines), or a dataset's labels/scenarios.parquet."""
    if not path.exists():
        raise CdrError(f"no labels at {path}: run `cdr produce` first or pass --labels")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        for k in ("start_time", "end_time"):
            r[k] = dt.datetime.fromisoformat(r[k]).astimezone(UTC)
    return rows
