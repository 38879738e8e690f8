"""Reading the alerts back from PostgreSQL and the producer's scenario labels, for scoring."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cdr.contract import SCENARIOS
from cdr.errors import BadInput
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


LABEL_FIELDS = ("scenario_id", "scenario", "entity_type", "entity_id", "start_time", "end_time")
LABELS_HINT = "the producer's labels (cdr produce --labels-out) or a dataset's labels/scenarios.parquet"


def read_labels(path: Path) -> list[dict]:
    """Labels as the producer writes them (JSON Lines), or a dataset's labels/scenarios.parquet.
    Raises BadInput naming the file (and the line) when it is missing, empty or not labels."""
    if not path.exists():
        raise BadInput(f"no labels at {path}", "run `cdr produce` first, or pass --labels FILE (" + LABELS_HINT + ")")
    if not path.is_file():
        raise BadInput(f"labels {path} is not a file", f"--labels takes {LABELS_HINT}")
    if path.suffix == ".parquet":
        rows = _parquet_labels(path)
    else:
        rows = [_label(path, n, line) for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace")
                                                                 .splitlines(), 1) if line.strip()]
    if not rows:
        raise BadInput(f"labels {path} holds no labels",
                       "stream with scenarios (cdr produce --scenarios all) long enough for one to end")
    return rows


def _label(path: Path, n: int, line: str) -> dict:
    """Line ``n`` of a JSON Lines labels file, its times as UTC datetimes."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInput(f"labels {path}, line {n}: not JSON ({exc.msg}, column {exc.colno})",
                       f"--labels takes {LABELS_HINT}") from None
    if not isinstance(row, dict):
        raise BadInput(f"labels {path}, line {n}: a JSON {type(row).__name__}, not an object",
                       f"--labels takes {LABELS_HINT}")
    return _checked(row, f"labels {path}, line {n}")


def _checked(row: dict, where: str) -> dict:
    missing = [k for k in LABEL_FIELDS if row.get(k) in (None, "")]
    if missing:
        raise BadInput(f"{where}: missing {', '.join(missing)}", f"a label has {', '.join(LABEL_FIELDS)}")
    if row["scenario"] not in SCENARIOS:
        raise BadInput(f"{where}: unknown scenario {row['scenario']!r}", f"scenarios: {', '.join(SCENARIOS)}")
    for k in ("start_time", "end_time"):
        value = row[k]
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                raise BadInput(f"{where}: {k} {row[k]!r} is not an ISO 8601 time",
                               "e.g. 2025-12-31T23:00:00+00:00") from None
        if not isinstance(value, dt.datetime):
            raise BadInput(f"{where}: {k} {row[k]!r} is not a time", "e.g. 2025-12-31T23:00:00+00:00")
        # A time without a zone is UTC, as everywhere in the platform.
        row[k] = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return row


def _parquet_labels(path: Path) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"labels {path} is not a readable Parquet file ({exc})",
                       f"--labels takes {LABELS_HINT}") from None
    missing = [k for k in LABEL_FIELDS if k not in table.column_names]
    if missing:
        raise BadInput(f"labels {path} has no column {', '.join(missing)}", f"a label has {', '.join(LABEL_FIELDS)}")
    return [_checked(row, f"labels {path}, row {n}") for n, row in enumerate(table.to_pylist(), 1)]
