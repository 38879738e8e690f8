"""The serving store: schema `serving` of PostgreSQL's serving database (serving/schema.sql).

Everything here is plain SQL over psycopg; Spark only writes the staging tables (serving.publish).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cdr.settings import Settings

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
SPEED_SQL = Path(__file__).resolve().parents[1] / "streaming" / "serving.sql"
# Batch views, in the order a day is swapped; each is keyed by `day`.
BATCH_TABLES = ("batch_cell_hour", "batch_service_hour", "batch_subscriber_day", "batch_revenue_day",
                "batch_anomalies", "batch_records_day")
# Rollups of a published day, computed from its batch_cell_hour in the same transaction.
BATCH_ROLLUPS = ("batch_cell_day", "batch_network_hour")
# A lock no other statement takes: publications and retention of the store run one at a time.
_PUBLISH_LOCK = 0x5E_21_4E


@contextmanager
def connect(settings: Settings, autocommit: bool = False) -> Iterator:
    import psycopg

    pg = settings.postgres
    with psycopg.connect(host=settings.stack.bind_ip, port=pg.port, user=pg.user, dbname=pg.serving_db,
                         connect_timeout=5, autocommit=autocommit) as conn:
        yield conn


def apply_schema(settings: Settings) -> None:
    """The speed layer's tables, then the serving schema; the speed hours and cell days are rebuilt
    from the minutes when a table of theirs is new (a stack that streamed before it existed)."""
    with connect(settings, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_PUBLISH_LOCK,))
        try:
            conn.execute(SPEED_SQL.read_text())
            new = conn.execute("SELECT to_regclass('serving.speed_cell_day') IS NULL").fetchone()[0]
            conn.execute(SCHEMA_SQL.read_text())
            if new:
                rebuild_speed_hours(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_PUBLISH_LOCK,))


def rebuild_speed_hours(conn) -> None:
    """The speed hour and cell-day tables recomputed from the per-minute tables (what the triggers
    maintain)."""
    with conn.transaction():
        conn.execute("DELETE FROM serving.speed_cell_hour")
        conn.execute("""
            INSERT INTO serving.speed_cell_hour
            SELECT date_trunc('hour', minute_start), cell_id, sum(call_attempts), sum(answered),
                   sum(dropped_or_failed), sum(sms), sum(data_bytes), count(*), localtimestamp
              FROM kpi_cell_minute GROUP BY 1, 2""")
        conn.execute("DELETE FROM serving.speed_cell_day")
        conn.execute("""
            INSERT INTO serving.speed_cell_day
            SELECT minute_start::DATE, cell_id, sum(call_attempts), sum(answered), sum(dropped_or_failed),
                   sum(sms), sum(data_bytes), count(*), localtimestamp
              FROM kpi_cell_minute GROUP BY 1, 2""")
        conn.execute("DELETE FROM serving.speed_service_hour")
        conn.execute("""
            INSERT INTO serving.speed_service_hour
            SELECT date_trunc('hour', minute_start), service, sum(records), sum(answered),
                   sum(dropped_or_failed), sum(data_bytes), count(*), localtimestamp
              FROM kpi_service_minute GROUP BY 1, 2""")


def swap_day(conn, day: dt.date, staging: dict[str, str]) -> dict[str, int]:
    """Replace ``day`` in every batch view with the rows of its staging table and mark the day
    published, in one transaction (readers see the day before or after, never between); the
    staging tables are dropped in it too. Returns the rows per view."""
    rows = {}
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK,))
        for table in BATCH_TABLES:
            conn.execute(f"DELETE FROM serving.{table} WHERE day = %s", (day,))
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'serving'"
                " AND table_name = %s ORDER BY ordinal_position", (table,))]
            names = ", ".join(columns)
            done = conn.execute(f"INSERT INTO serving.{table} ({names}) SELECT {names} FROM serving.{staging[table]}"
                                " WHERE day = %s", (day,))
            rows[table] = done.rowcount
        conn.execute("SELECT serving.roll_up_batch_day(%s)", (day,))
        conn.execute("INSERT INTO serving.published_day (day, published_at, batch_rows) VALUES (%s, localtimestamp, %s)"
                     " ON CONFLICT (day) DO UPDATE SET published_at = EXCLUDED.published_at,"
                     " batch_rows = EXCLUDED.batch_rows", (day, json.dumps(rows)))
    return rows


def drop_tables(conn, names: list[str]) -> None:
    with conn.transaction():
        for name in names:
            conn.execute(f"DROP TABLE IF EXISTS serving.{name}")


def unpublish(conn, day: dt.date) -> None:
    """Take ``day`` out of the batch views: the merged views read it from the speed layer again."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK,))
        conn.execute("DELETE FROM serving.published_day WHERE day = %s", (day,))
        for table in BATCH_TABLES + BATCH_ROLLUPS:
            conn.execute(f"DELETE FROM serving.{table} WHERE day = %s", (day,))


def retain_speed(conn, after_hours: float, now: dt.datetime | None = None) -> dict[str, int]:
    """Remove the speed layer's per-minute rows of the days the batch published at least
    ``after_hours`` ago (their hours go with them, through the triggers). A day not published is
    never touched. Returns the rows removed per table."""
    removed = {}
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK,))
        cutoff = (now or conn.execute("SELECT localtimestamp").fetchone()[0]) - dt.timedelta(hours=after_hours)
        for table in ("kpi_cell_minute", "kpi_service_minute"):
            done = conn.execute(
                f"DELETE FROM {table} t USING serving.published_day p"
                " WHERE p.day = t.minute_start::DATE AND p.published_at <= %s", (cutoff,))
            removed[table] = done.rowcount
    return removed


def published_days(conn) -> dict[dt.date, dt.datetime]:
    return dict(conn.execute("SELECT day, published_at FROM serving.published_day ORDER BY day").fetchall())


def layer_status(conn) -> dict:
    cursor = conn.execute("SELECT * FROM serving.layer_status")
    return dict(zip([c.name for c in cursor.description], cursor.fetchone()))


def recent_days(conn, count: int) -> list[dt.date]:
    """The latest ``count`` days either layer holds (published, or with speed rows)."""
    return [r[0] for r in conn.execute(
        "SELECT day FROM serving.published_day UNION SELECT DISTINCT hour_start::DATE FROM serving.speed_cell_hour"
        " ORDER BY 1 DESC LIMIT %s", (count,)).fetchall()][::-1]


def day_sources(conn, days: list[dt.date]) -> list[tuple]:
    """Per day given: the layer the merged views read it from, its cell-hour rows and totals."""
    if not days:
        return []
    return [r for r in conn.execute("""
        SELECT hour_start::DATE AS day, source, count(*) AS cell_hours, sum(call_attempts), sum(sms), sum(data_bytes)
          FROM serving.cell_hour WHERE hour_start >= %s AND hour_start < %s
         GROUP BY 1, 2 ORDER BY 1, 2""", (days[0], days[-1] + dt.timedelta(days=1))).fetchall() if r[0] in days]
