"""`make bench-serving`: publishing a day against a plain Spark JDBC write of the same rows, and
the merged views' query latency, on the demo's data and on ten times its rows (docs/benchmarks.md).

Needs a warehouse with published days (`make demo`). The publish measurement republishes the
latest published day with the rows it already has (idempotent). The 10x measurement copies the
demo's last seven days, ten times over with renamed cells and entities, to days of the year 2000
(six published, the seventh as speed rows), measures, and removes them again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from cdr.settings import Settings, get_settings
from serving import store

BENCH_FIRST_DAY = dt.date(2000, 1, 3)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def queries(first: dt.date, last: dt.date) -> dict[str, tuple[str, tuple]]:
    """The questions measured, over [first, last] (7 days); SQL and parameters. The two that sum
    every cell are asked of their rollup view and, for comparison, of the cell-hour view."""
    lo, hi = first, last + dt.timedelta(days=1)
    return {
        "one cell, hourly, 7 days": (
            "SELECT hour_start, call_attempts, answered, dropped_or_failed, sms, data_bytes, source"
            " FROM serving.cell_hour WHERE cell_id = %s AND hour_start >= %s AND hour_start < %s ORDER BY hour_start",
            (None, lo, hi)),
        "20 cells most dropped or failed, 7 days (serving.cell_day)": (
            "SELECT cell_id, sum(dropped_or_failed) AS failed, sum(call_attempts) AS attempts FROM serving.cell_day"
            " WHERE day >= %s AND day <= %s GROUP BY cell_id ORDER BY failed DESC, cell_id LIMIT 20", (first, last)),
        "20 cells most dropped or failed, summed from serving.cell_hour": (
            "SELECT cell_id, sum(dropped_or_failed) AS failed, sum(call_attempts) AS attempts FROM serving.cell_hour"
            " WHERE hour_start >= %s AND hour_start < %s GROUP BY cell_id ORDER BY failed DESC, cell_id LIMIT 20",
            (lo, hi)),
        "network per hour, 7 days (serving.network_hour)": (
            "SELECT hour_start, call_attempts, answered, dropped_or_failed, data_bytes, source"
            " FROM serving.network_hour WHERE hour_start >= %s AND hour_start < %s ORDER BY 1", (lo, hi)),
        "network per hour, summed from serving.cell_hour": (
            "SELECT hour_start, sum(call_attempts), sum(answered), sum(dropped_or_failed), sum(data_bytes), min(source)"
            " FROM serving.cell_hour WHERE hour_start >= %s AND hour_start < %s GROUP BY hour_start ORDER BY 1", (lo, hi)),
        "latest hour held (the dashboards' seven days end there)": (
            "SELECT hour_start FROM serving.latest_hour", ()),
        "incidents, 7 days": (
            "SELECT * FROM serving.incidents WHERE day >= %s AND day <= %s ORDER BY day, scenario", (first, last)),
    }


# Each rollup question and the same question summed from the cell hours: their answers must agree.
SAME_ANSWER = (("20 cells most dropped or failed, 7 days (serving.cell_day)",
                "20 cells most dropped or failed, summed from serving.cell_hour"),
               ("network per hour, 7 days (serving.network_hour)", "network per hour, summed from serving.cell_hour"))


def measure_queries(conn, first: dt.date, last: dt.date, runs: int) -> dict[str, tuple[float, float, int]]:
    """p50 and p95 in ms and the rows returned, per query (one warm-up run each). Stops if a rollup
    answers differently from the cell hours it sums."""
    busiest = conn.execute("SELECT cell_id FROM serving.cell_hour WHERE hour_start >= %s AND hour_start < %s"
                           " GROUP BY cell_id ORDER BY sum(call_attempts) DESC LIMIT 1",
                           (first, last + dt.timedelta(days=1))).fetchone()
    results, answers = {}, {}
    for name, (sql, params) in queries(first, last).items():
        params = tuple(busiest[0] if p is None and busiest else p for p in params)
        answers[name] = conn.execute(sql, params).fetchall()
        rows = len(answers[name])
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            conn.execute(sql, params).fetchall()
            samples.append((time.perf_counter() - t0) * 1000)
        results[name] = (*_percentiles(samples), rows)
    for rollup, summed in SAME_ANSWER:
        if answers[rollup] != answers[summed]:
            raise SystemExit(f"error: {rollup!r} answers differently from {summed!r}:\n"
                             f"{answers[rollup][:3]}\n{answers[summed][:3]}")
    return results


def _copy_scaled(conn, days: list[dt.date], copies: int) -> list[dt.date]:
    """``copies`` copies of ``days`` (cells, entities renamed) on bench days: all but the last
    published from the batch tables, the last as speed rows. Returns the bench days."""
    bench = [BENCH_FIRST_DAY + dt.timedelta(days=i) for i in range(len(days))]
    with conn.transaction():
        for source, target in zip(days, bench):
            shift = target - source
            speed = target == bench[-1]
            for k in range(copies):
                if speed:
                    conn.execute(
                        "INSERT INTO serving.speed_cell_hour SELECT hour_start + %s, cell_id || '#' || %s, call_attempts,"
                        " answered, dropped_or_failed, sms, data_bytes, 60, localtimestamp FROM serving.batch_cell_hour"
                        " WHERE day = %s", (shift, k, source))
                    conn.execute(
                        "INSERT INTO serving.speed_cell_day SELECT traffic_day + %s, cell_id || '#' || %s, call_attempts,"
                        " answered, dropped_or_failed, sms, data_bytes, 1440, localtimestamp"
                        " FROM serving.batch_cell_day WHERE day = %s", (shift, k, source))
                    conn.execute(
                        "INSERT INTO alerts SELECT 'bench' || md5(random()::TEXT), scenario, entity_type,"
                        " entity_id || '#' || %s, window_start + %s, window_end + %s, 'high', '{}'::jsonb, localtimestamp"
                        " FROM serving.batch_anomalies WHERE day = %s", (k, shift, shift, source))
                    continue
                conn.execute(
                    "INSERT INTO serving.batch_cell_hour SELECT %s, hour_start + %s, cell_id || '#' || %s, call_attempts,"
                    " answered, dropped_or_failed, sms, data_bytes FROM serving.batch_cell_hour WHERE day = %s",
                    (target, shift, k, source))
                conn.execute(
                    "INSERT INTO serving.batch_anomalies SELECT %s, scenario, entity_type, entity_id || '#' || %s,"
                    " window_start + %s, window_end + %s, score, method FROM serving.batch_anomalies WHERE day = %s",
                    (target, k, shift, shift, source))
                if k < copies // 2:  # half the batch anomalies were also seen by the stream
                    conn.execute(
                        "INSERT INTO alerts SELECT 'bench' || md5(random()::TEXT), scenario, entity_type,"
                        " entity_id || '#' || %s, window_start + %s, window_end + %s, 'high', '{}'::jsonb, localtimestamp"
                        " FROM serving.batch_anomalies WHERE day = %s", (k, shift, shift, source))
            if not speed:
                conn.execute("SELECT serving.roll_up_batch_day(%s)", (target,))
                conn.execute("INSERT INTO serving.published_day VALUES (%s, localtimestamp, '{}')", (target,))
    for table in ("batch_cell_hour", "batch_cell_day", "batch_network_hour", "speed_cell_hour", "speed_cell_day"):
        conn.execute(f"ANALYZE serving.{table}")
    conn.execute("ANALYZE alerts")
    return bench


def _remove_scaled(conn, bench: list[dt.date]) -> None:
    first, end = bench[0], bench[-1] + dt.timedelta(days=1)
    with conn.transaction():
        conn.execute("DELETE FROM serving.published_day WHERE day >= %s AND day < %s", (first, end))
        for table in ("batch_cell_hour", "batch_cell_day", "batch_network_hour", "speed_cell_day"):
            conn.execute(f"DELETE FROM serving.{table} WHERE day >= %s AND day < %s", (first, end))
        conn.execute("DELETE FROM serving.batch_anomalies WHERE day >= %s AND day < %s", (first, end))
        conn.execute("DELETE FROM serving.speed_cell_hour WHERE hour_start >= %s AND hour_start < %s", (first, end))
        conn.execute("DELETE FROM alerts WHERE window_start >= %s AND window_start < %s", (first, end))


def measure_publish(settings: Settings, day: dt.date | None, runs: int) -> tuple[dt.date, dict[str, list[float]]]:
    """Seconds of a plain Spark JDBC write of the day's view rows and of publishing them, alternated.
    The day: the latest of the warehouse (``cdr_dw``, the demo's) unless given."""
    from pyspark.sql import functions as F

    from batch.cli import batch_session
    from serving import views
    from serving.publish import publish_views, write_jdbc

    spark = batch_session("cdr-bench-serving")
    try:
        if not spark.catalog.tableExists("cdr_dw.fact_usage"):
            raise SystemExit("error: there is no warehouse cdr_dw on this stack: run `make demo` first")
        day = day or spark.table("cdr_dw.fact_usage").agg(F.max("date")).first()[0]
        if day is None:
            raise SystemExit("error: the warehouse cdr_dw holds no day: run `make demo` first")
        wanted = [F.lit(day)]
        frames = views.build(spark.table("cdr_dw.fact_usage").filter(F.col("date").isin(*wanted)),
                             spark.table("cdr_dw.anomalies").filter(F.col("date").isin(*wanted)),
                             spark.table("cdr_ops.reconciliation").filter(F.col("date").isin(*wanted)))
        frames = {name: df.cache() for name, df in frames.items()}
        rows = {name: df.count() for name, df in frames.items()}  # computed once: only the writes are timed
        print(f"rows of {day}: " + ", ".join(f"{n.removeprefix('batch_')} {c:,}" for n, c in rows.items()))
        times: dict[str, list[float]] = {"plain JDBC write": [], "publish (staging + swap)": []}
        for _ in range(runs):
            t0 = time.perf_counter()
            for name in store.BATCH_TABLES:
                write_jdbc(frames[name], f"serving.bench_plain_{name}", settings)
            times["plain JDBC write"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            publish_views(frames, [day], settings, log=lambda _: None)
            times["publish (staging + swap)"].append(time.perf_counter() - t0)
        with store.connect(settings) as conn:
            store.drop_tables(conn, [f"bench_plain_{name}" for name in store.BATCH_TABLES])
        return day, times
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=dt.date.fromisoformat, help="Day to publish (default: the warehouse's latest).")
    parser.add_argument("--runs", type=int, default=3, help="Publications (and plain writes) measured.")
    parser.add_argument("--queries", type=int, default=100, help="Runs of each query.")
    parser.add_argument("--scale", type=int, default=10, help="Copies of the demo's rows for the scaled measurement.")
    args = parser.parse_args(argv)
    settings = get_settings()
    store.apply_schema(settings)
    day, times = measure_publish(settings, args.day, args.runs)
    print(f"== publishing {day} (median of {args.runs}) ==")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, m in medians.items():
        print(f"  {name:<28} {m:7.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
    ratio = medians["publish (staging + swap)"] / medians["plain JDBC write"]
    print(f"  publish / plain write: {ratio:.2f} (goal <= 1.5)")

    # The seven days ending with the day published (and the speed layer's day after it, if any).
    with store.connect(settings) as conn:
        held, published = store.recent_days(conn, 400), store.published_days(conn)
    last = max([d for d in held if d <= day + dt.timedelta(days=1)] or [day])
    first = last - dt.timedelta(days=6)
    days = [d for d in published if first <= d <= last]  # copied for the 10x rows
    with store.connect(settings, autocommit=True) as conn:
        print(f"\n== merged views, {first} .. {last}: the demo's data ({args.queries} runs each) ==")
        for name, (p50, p95, rows) in measure_queries(conn, first, last, args.queries).items():
            print(f"  {name:<62} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({rows:,} rows)")
        bench = _copy_scaled(conn, (days * 7)[:7], args.scale)
        try:
            cell_hours = conn.execute("SELECT count(*) FROM serving.cell_hour WHERE hour_start >= %s AND hour_start < %s",
                                      (bench[0], bench[-1] + dt.timedelta(days=1))).fetchone()[0]
            print(f"\n== merged views, {args.scale}x the demo's rows ({cell_hours:,} cell-hours over 7 days, "
                  f"the last day from the speed layer) ==")
            for name, (p50, p95, rows) in measure_queries(conn, bench[0], bench[-1], args.queries).items():
                print(f"  {name:<62} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({rows:,} rows)")
        finally:
            _remove_scaled(conn, bench)


if __name__ == "__main__":
    main()
