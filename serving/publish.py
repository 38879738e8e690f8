"""Publish batch days into the serving store: Spark computes the views (serving.views) and writes
them with its JDBC writer into staging tables; each day is then swapped in by one PostgreSQL
transaction (serving.store.swap_day). A failure before the swap leaves the published days as
they were; the staging tables are dropped either way."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdr.settings import Settings
from serving import store, views

# Rows per JDBC batch; the driver rewrites each batch into multi-row INSERTs.
JDBC_BATCH = 10_000


def jdbc_options(settings: Settings) -> dict[str, str]:
    """Spark JDBC options for the serving database. The password, where PostgreSQL asks for one
    (the container stack), comes from PGPASSWORD as for psycopg; the local stack trusts loopback."""
    pg = settings.postgres
    options = {"url": f"jdbc:postgresql://{settings.stack.bind_ip}:{pg.port}/{pg.serving_db}?reWriteBatchedInserts=true",
               "user": pg.user, "driver": "org.postgresql.Driver", "batchsize": str(JDBC_BATCH)}
    if os.environ.get("PGPASSWORD"):
        options["password"] = os.environ["PGPASSWORD"]
    return options


def write_jdbc(df: DataFrame, table: str, settings: Settings, partitions: int = 2) -> None:
    """A plain Spark JDBC write (the table is created, or replaced, by Spark)."""
    (df.coalesce(partitions).write.format("jdbc").options(**jdbc_options(settings))
     .option("dbtable", table).mode("overwrite").save())


@dataclass
class Publication:
    days: list[dt.date]
    rows: dict[dt.date, dict[str, int]] = field(default_factory=dict)
    write_s: float = 0.0
    swap_s: float = 0.0


def publish(tables: Callable[[str, str], DataFrame], days: list[dt.date], settings: Settings,
            log: Callable[[str], None] = print) -> Publication:
    """Publish ``days`` from the warehouse. ``tables(db, name)`` returns a warehouse table (the
    batch's zones decide which databases); only the rows of ``days`` are read."""
    wanted = [F.lit(d) for d in days]
    usage = tables("cdr_dw", "fact_usage").filter(F.col("date").isin(*wanted)).persist()  # read by four views
    try:
        frames = views.build(usage, tables("cdr_dw", "anomalies").filter(F.col("date").isin(*wanted)),
                             tables("cdr_ops", "reconciliation").filter(F.col("date").isin(*wanted)))
        result = publish_views(frames, days, settings, log)
    finally:
        usage.unpersist()
    if settings.serving.retain_after_publish:  # the daily batch is the retention's schedule
        hours = settings.serving.speed_retention_hours
        with store.connect(settings) as conn:
            removed = store.retain_speed(conn, hours)
        log(f"publish: retention removed {removed['kpi_cell_minute']:,} cell-minute and "
            f"{removed['kpi_service_minute']:,} service-minute rows of days published {hours:g} h ago or more")
    return result


def publish_views(frames: dict[str, DataFrame], days: list[dt.date], settings: Settings,
                  log: Callable[[str], None] = print) -> Publication:
    """Write ``frames`` (every batch view, rows of ``days``) to staging tables, then swap each day in."""
    store.apply_schema(settings)
    token = uuid.uuid4().hex[:10]
    staging = {name: f"stage_{name}_{token}" for name in store.BATCH_TABLES}
    result = Publication(days=list(days))
    try:
        t0 = time.perf_counter()
        for name in store.BATCH_TABLES:
            write_jdbc(frames[name], f"serving.{staging[name]}", settings)
        result.write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with store.connect(settings) as conn:
            for day in days:
                result.rows[day] = store.swap_day(conn, day, staging)
                log(f"publish {day}: " + ", ".join(f"{n.removeprefix('batch_')} {c:,}"
                                                    for n, c in result.rows[day].items()))
        result.swap_s = time.perf_counter() - t0
    finally:
        with store.connect(settings) as conn:
            store.drop_tables(conn, list(staging.values()))
    return result
