"""Retention of the speed layer's rows (`cdr serving retain`) on the local stack's PostgreSQL:
the minutes of a day published long enough ago go, with their hours and cell days; a day published
just now and a day not published keep theirs. Days of 2001, which nothing else writes."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.integration.conftest import cdr, delete_minutes

pytestmark = [pytest.mark.stack]

OLD, RECENT, UNPUBLISHED = dt.date(2001, 3, 1), dt.date(2001, 3, 2), dt.date(2001, 3, 3)


def _speed_rows(conn) -> dict[tuple[str, dt.date], int]:
    """Rows per speed table and day, for the three days."""
    counts = {}
    for table, column in (("kpi_cell_minute", "minute_start"), ("kpi_service_minute", "minute_start"),
                          ("serving.speed_cell_hour", "hour_start"), ("serving.speed_service_hour", "hour_start"),
                          ("serving.speed_cell_day", "day")):
        for day, n in conn.execute(f"SELECT {column}::DATE, count(*) FROM {table} WHERE {column} >= %s"
                                   f" AND {column} < %s GROUP BY 1", (OLD, UNPUBLISHED + dt.timedelta(days=1))):
            counts[table, day] = n
    return counts


@pytest.fixture
def three_days(local_stack):
    from serving import store

    settings = local_stack.settings
    store.apply_schema(settings)

    def clean(conn) -> None:
        delete_minutes(settings, OLD, 3)
        conn.execute("DELETE FROM serving.published_day WHERE day BETWEEN %s AND %s", (OLD, UNPUBLISHED))

    with store.connect(settings, autocommit=True) as conn:
        clean(conn)
        for day in (OLD, RECENT, UNPUBLISHED):
            for minute in (0, 1, 61):
                start = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
                conn.execute("INSERT INTO kpi_cell_minute VALUES ('60301-00001-1', %s, 3, 2, 1, 4, 100)", (start,))
                conn.execute("INSERT INTO kpi_service_minute VALUES ('voice', %s, 3, 2, 1, 0)", (start,))
        conn.execute("INSERT INTO serving.published_day VALUES (%s, localtimestamp - INTERVAL '25 hours', '{}'),"
                     " (%s, localtimestamp, '{}')", (OLD, RECENT))
        try:
            yield conn
        finally:
            clean(conn)


def test_retention_removes_only_the_speed_rows_of_days_published_long_enough_ago(three_days):
    before = _speed_rows(three_days)
    expected_per_day = {"kpi_cell_minute": 3, "kpi_service_minute": 3, "serving.speed_cell_hour": 2,
                        "serving.speed_service_hour": 2, "serving.speed_cell_day": 1}
    assert before == {(t, d): n for t, n in expected_per_day.items() for d in (OLD, RECENT, UNPUBLISHED)}

    out = cdr("serving", "retain", "--after-hours", "24")
    # (a stack that has run for days may hold other days published long ago: they go too)
    removed = re.search(r"removed ([\d,]+) cell-minute and ([\d,]+) service-minute rows", out)
    assert removed and all(int(n.replace(",", "")) >= 3 for n in removed.groups()), out
    assert _speed_rows(three_days) == {k: n for k, n in before.items() if k[1] != OLD}
    # the hours a published day's minutes rolled into went with them: nothing is left negative
    assert three_days.execute("SELECT count(*) FROM serving.speed_cell_day WHERE minutes <= 0").fetchone()[0] == 0
