"""`cdr serving`: the merged query surface of the batch and speed layers (docs/serving.md)."""

from __future__ import annotations

import datetime as dt
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _one_day(value: str, option: str = "--date") -> dt.date:
    from batch.cli import _day

    return _day(value, option)


@app.command()
def publish(
    date: Optional[str] = typer.Option(None, help="One day to publish (YYYY-MM-DD)."),
    from_: Optional[str] = typer.Option(None, "--from", help="First day of a range (with --to)."),
    to: Optional[str] = typer.Option(None, help="Last day of a range (inclusive)."),
    root: Optional[str] = typer.Option(None, help="Root URI of the batch zones."),
    db_prefix: str = typer.Option("", help="Prefix of the Hive databases."),
) -> None:
    """Publish batch days from the warehouse into the serving store (what `cdr batch run` ends with)."""
    from batch.cli import _dates, _zones, batch_session
    from cdr.errors import BadInput
    from cdr.settings import get_settings
    from serving.publish import publish as publish_days

    days = _dates(date, from_, to)
    if not days:
        raise BadInput("give the days to publish: --date D or --from D1 --to D2")
    zones = _zones(root, db_prefix)
    spark = batch_session("cdr-serving-publish")
    try:
        done = publish_days(lambda db, table: spark.table(f"{zones.db(db)}.{table}"), days, get_settings(),
                            log=typer.echo)
    finally:
        spark.stop()
    typer.echo(f"published {len(done.days)} day(s): views written in {done.write_s:.1f} s, "
               f"swapped in {done.swap_s:.2f} s")


@app.command()
def status(
    days: int = typer.Option(7, help="How many of the latest days either layer holds to show."),
) -> None:
    """Where each layer stands, and which layer the merged views read each recent day from."""
    from cdr.settings import get_settings
    from serving import store

    settings = get_settings()
    store.apply_schema(settings)
    with store.connect(settings) as conn:
        s = store.layer_status(conn)
        typer.echo(f"batch: {s['days_published']} day(s) published, complete through {s['batch_complete_through'] or '-'}"
                   f" (last published {s['last_published_at'] or '-'})")
        typer.echo(f"speed: closed through {s['speed_closed_through'] or '-'}")
        rows = store.day_sources(conn, store.recent_days(conn, days))
    typer.echo(f"\n{'day':<11} {'source':<6} {'cell-hours':>10} {'call attempts':>14} {'sms':>10} {'data GB':>9}")
    for day, source, cell_hours, calls, sms, data in rows:
        typer.echo(f"{day!s:<11} {source:<6} {cell_hours:>10,} {int(calls):>14,} {int(sms):>10,} {int(data) / 1e9:>9.1f}")


@app.command()
def reconcile(
    date: str = typer.Option(..., help="The day to reconcile (YYYY-MM-DD): published by the batch, streamed."),
    tolerance: Optional[float] = typer.Option(
        None, help="Share of the day's records the layers may differ by, unexplained (default: settings)."),
) -> None:
    """The speed layer's counts of a day against the batch's, difference explained by reason.

    Exits 4 when a difference is unexplained beyond the tolerance. The report is kept in
    serving.layer_reconciliation, and its verdict pushed to the Pushgateway (docs/operations.md)."""
    import time

    from cdr.errors import BadInput, DataLoss
    from cdr.pushgateway import push_reconcile
    from cdr.settings import get_settings
    from serving import reconcile as rc
    from serving import store

    day = _one_day(date)
    settings = get_settings()
    limit = settings.serving.reconcile_tolerance if tolerance is None else tolerance
    if not 0 <= limit <= 1:
        raise BadInput(f"--tolerance must be a share between 0 and 1 (got {limit})")
    store.apply_schema(settings)
    with store.connect(settings) as conn:
        speed, batch, closed = rc.gather(conn, day)
        rows = rc.compare(day, speed, batch, closed, limit)
        rc.save(conn, rows)
    typer.echo(f"layer reconciliation of {day} (tolerance {limit:.2%}; stream {'closed' if closed else 'not closed'} the day)")
    typer.echo(rc.format_report(rows))
    failed = [r.record_type for r in rows if r.failed]
    push_reconcile(settings, day, balanced=not failed, at=time.time())
    if failed:
        raise DataLoss(f"the speed and batch layers disagree on {day} for {', '.join(failed)} beyond the tolerance",
                       "see serving.layer_reconciliation; late records dropped by the stream's windows and records "
                       "the batch did not receive show here")


@app.command()
def incidents(
    date: Optional[str] = typer.Option(None, help="Incidents of one day (default: every day)."),
    status: Optional[str] = typer.Option(
        None, help="Only: confirmed, unconfirmed, 'awaiting batch' or 'batch only'."),
) -> None:
    """Stream alerts and batch anomalies merged into incidents (serving.incidents)."""
    from cdr.settings import get_settings
    from serving import store

    settings = get_settings()
    store.apply_schema(settings)
    where, params = [], []
    if date:
        where.append("day = %s")
        params.append(_one_day(date))
    if status:
        where.append("status = %s")
        params.append(status)
    sql = ("SELECT day, scenario, entity_type, left(entity_id, 16), status, stream_alerts, detection_delay, batch_score"
           " FROM serving.incidents" + (" WHERE " + " AND ".join(where) if where else "") +
           " ORDER BY day, scenario, entity_id")
    with store.connect(settings) as conn:
        rows = conn.execute(sql, params).fetchall()
    typer.echo(f"{'day':<11} {'scenario':<18} {'entity':<26} {'status':<15} {'alerts':>6} {'delay':>9} {'batch score':>11}")
    for day, scenario, etype, entity, state, alerts, delay, score in rows:
        delay_s = f"{delay.total_seconds():.0f} s" if delay is not None else "-"
        typer.echo(f"{day!s:<11} {scenario:<18} {etype + ':' + entity:<26} {state:<15} {alerts:>6} {delay_s:>9} "
                   f"{'-' if score is None else f'{score:.1f}':>11}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[4]] = counts.get(r[4], 0) + 1
    typer.echo(f"{len(rows)} incident(s): " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))


@app.command()
def unpublish(
    date: str = typer.Option(..., help="The day to take out of the batch views (YYYY-MM-DD)."),
) -> None:
    """Take a published day out of the batch views: the merged views read it from the speed layer
    again (as far as the speed layer still holds it)."""
    from cdr.settings import get_settings
    from serving import store

    day = _one_day(date)
    settings = get_settings()
    store.apply_schema(settings)
    with store.connect(settings) as conn:
        store.unpublish(conn, day)
    typer.echo(f"{day} is no longer published by the batch layer")


@app.command()
def retain(
    after_hours: Optional[float] = typer.Option(
        None, help="Remove speed rows of days published at least this long ago (default: settings)."),
) -> None:
    """Remove the speed layer's rows that published batch days supersede (never a day not published)."""
    from cdr.settings import get_settings
    from serving import store

    settings = get_settings()
    hours = settings.serving.speed_retention_hours if after_hours is None else after_hours
    store.apply_schema(settings)
    with store.connect(settings) as conn:
        removed = store.retain_speed(conn, hours)
    typer.echo(f"removed {removed['kpi_cell_minute']:,} cell-minute and {removed['kpi_service_minute']:,} "
               f"service-minute rows of days published {hours:g} h ago or more")
