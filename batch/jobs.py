"""The batch chain: land -> validate -> dims -> facts -> features -> anomalies -> marts.

Each step reads the tables of the previous one and replaces exactly the date partitions it
processes (write, then swap), so a step or the whole chain can be rerun for any dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdr.contract import CELLS, RECORD_TYPES, SUBSCRIBERS
from cdr.profile import Profile
from cdr.validation import rules_for

from batch import anomalies, dims, facts, features, io, marts
from batch.pseudonymise import identifier_columns, pads_frame, pseudonymise_columns
from batch.read import read_cdr, read_reference
from batch.validate import clean_records, quarantine_records, reconciliation, tag_records

FORMATS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl", "json": "jsonl"}
STEPS = ("land", "validate", "dims", "facts", "features", "anomalies", "marts")


@dataclass
class BatchContext:
    spark: SparkSession
    zones: io.Zones
    profile: Profile
    key: bytes
    dates: list[dt.date]
    input_uri: str | None = None
    # False when the input carries only CDRs (the bronze landing): reference data stays as landed before.
    reference_from_input: bool = True
    reference_time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    log: Callable[[str], None] = print


def _format_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    # Files without an extension are the speed layer's bronze Parquet (Flink names its part files so).
    return FORMATS[name.rsplit(".", 1)[-1]] if "." in name else "parquet"


def input_dates(spark: SparkSession, root: str) -> list[dt.date]:
    """Dates present in a dataset or raw zone (``cdr/record_type=*/date=*``)."""
    found = set()
    for rt in RECORD_TYPES:
        for name in io.list_dirs(spark, f"{root}/cdr/record_type={rt}"):
            if name.startswith("date="):
                found.add(dt.date.fromisoformat(name[5:]))
    return sorted(found)


# --- steps ------------------------------------------------------------------------------------


def land(ctx: BatchContext) -> None:
    """Copy the input's files of the selected dates (and the reference data) into the raw zone."""
    if not ctx.input_uri:
        ctx.log("land: no --input, using the files already in the raw zone")
        return
    src, raw = ctx.input_uri.rstrip("/"), ctx.zones.raw
    if ctx.reference_from_input:
        for ref in ("subscribers", "cells"):
            io.copy_tree(ctx.spark, f"{src}/{ref}", f"{raw}/reference/{ref}")
    for day in ctx.dates:
        for rt in RECORD_TYPES:
            part = f"cdr/record_type={rt}/date={day}"
            if io.exists(ctx.spark, f"{src}/{part}"):
                io.copy_tree(ctx.spark, f"{src}/{part}", f"{raw}/{part}")
    _register_raw_tables(ctx)
    ctx.log(f"land: {len(ctx.dates)} day(s) copied to {raw}")


def _register_raw_tables(ctx: BatchContext) -> None:
    """External tables over the raw files (restricted zone: the only one with raw identifiers)."""
    spark, zones = ctx.spark, ctx.zones
    from cdr.contract import spark_schema

    for rt_name, rt in RECORD_TYPES.items():
        folder = f"{zones.raw}/cdr/record_type={rt_name}"
        days = [d for d in io.list_dirs(spark, folder) if d.startswith("date=")]
        if not days:
            continue
        fmt = _format_of(io.list_files(spark, f"{folder}/{days[0]}")[0])
        using, options = {"parquet": ("parquet", ""), "csv": ("csv", "OPTIONS (header 'true')"),
                          "jsonl": ("json", "")}[fmt]
        empty = spark.createDataFrame([], spark_schema(rt)).withColumn("date", F.lit(None).cast("string"))
        name = io.register_table(spark, zones, "cdr_raw", rt_name, empty, partition_column="date", using=using,
                                 location=folder, options=options)
        for d in days:
            spark.sql(f"ALTER TABLE {name} ADD IF NOT EXISTS PARTITION (`date`='{d[5:]}')")


def _reference(ctx: BatchContext, name: str) -> DataFrame:
    folder = f"{ctx.zones.raw}/reference/{name}"
    files = io.list_files(ctx.spark, folder)
    if not files:
        raise FileNotFoundError(f"no {name} reference data in {folder}: run the land step with --input")
    rt = SUBSCRIBERS if name == "subscribers" else CELLS
    return read_reference(ctx.spark, folder, rt, _format_of(files[0]))


def batch_id(spark: SparkSession, day: dt.date, files: list[str]) -> str:
    """Deterministic id of a day's batch: its date and a digest of its input files and sizes,
    so rerunning the same input writes the same rows."""
    digest = hashlib.sha256()
    for path, size in zip(files, io.file_sizes(spark, files)):
        digest.update(f"{path.rsplit('/', 3)[-3:]}:{size};".encode())
    return f"{day}-{digest.hexdigest()[:12]}"


def validate(ctx: BatchContext) -> None:
    """raw -> clean (pseudonymised) + quarantine + one reconciliation row per record type and day."""
    spark, zones = ctx.spark, ctx.zones
    cells = _reference(ctx, "cells").cache()
    pads = pads_frame(spark, ctx.key)
    for day in ctx.dates:
        files = {rt: io.list_files(spark, f"{zones.raw}/cdr/record_type={rt}/date={day}") for rt in RECORD_TYPES}
        bid = batch_id(spark, day, [f for fs in files.values() for f in fs])
        quarantined, recon, cached = [], [], []
        for rt_name, rt in RECORD_TYPES.items():
            if not files[rt_name]:
                continue
            raw, rejected = read_cdr(spark, files[rt_name], rt, _format_of(files[rt_name][0]))
            for bad in rejected:
                ctx.log(f"validate: rejected file {bad.path}: {bad.reason}")
            tagged = tag_records(raw, rules_for(rt, ctx.profile), cells, ctx.reference_time) \
                .persist(StorageLevel.MEMORY_AND_DISK)
            clean = facts.enrich_clean(clean_records(tagged, rt), ctx.profile.country_code)
            clean = pseudonymise_columns(clean, identifier_columns(rt), pads)
            io.write_partition(spark, zones, "cdr_clean", rt_name, clean.withColumn("date", F.lit(day)), "date", day)
            quarantined.append(quarantine_records(tagged, rt, bid)
                               .unionByName(_rejected_files(spark, rejected, rt_name, bid)))
            recon.append(reconciliation(tagged, rt, bid, len(rejected)).collect()[0].asDict())
            cached.append(tagged)
        if quarantined:
            q = quarantined[0]
            for df in quarantined[1:]:
                q = q.unionByName(df)
            io.write_partition(spark, zones, "cdr_ops", "quarantine", q.withColumn("date", F.lit(day)), "date", day, 1)
            rows = spark.createDataFrame(recon).withColumn("date", F.lit(day))
            io.write_partition(spark, zones, "cdr_ops", "reconciliation", rows, "date", day, 1)
            for tagged in cached:  # kept until the day's quarantine is written from them
                tagged.unpersist()
            for r in recon:
                ctx.log(f"validate {day} {r['record_type']:<5}: in {r['records_in']} = clean {r['clean']} "
                        f"+ quarantined {r['quarantined']} + duplicates {r['duplicates']} "
                        f"({'balanced' if r['balanced'] else 'NOT BALANCED'})")


def _rejected_files(spark: SparkSession, rejected: list, record_type: str, bid: str) -> DataFrame:
    rows = [(bid, record_type, None, "unparseable", r.reason, None, r.path) for r in rejected]
    return spark.createDataFrame(rows, "batch_id string, record_type string, record_id string, rule_code string, "
                                       "reason string, raw_record string, source_file string")


def load_dims(ctx: BatchContext) -> None:
    """Dimensions; the subscriber snapshot is loaded as of the last processed day (SCD2)."""
    spark, zones, profile = ctx.spark, ctx.zones, ctx.profile
    pads = pads_frame(spark, ctx.key)
    as_of = max(ctx.dates)
    subs = pseudonymise_columns(_reference(ctx, "subscribers"), identifier_columns(SUBSCRIBERS), pads)
    current = io.read_table(spark, zones, "cdr_dw", "dim_subscriber")
    dim = dims.scd2_subscribers(current, dims.subscriber_snapshot(subs, as_of), as_of)
    io.write_table(spark, zones, "cdr_dw", "dim_subscriber", dim, partitions=2)
    # The calendar keeps every year it already had, so reprocessing another range never shrinks it.
    first, last = min(ctx.dates), max(ctx.dates)
    known = io.read_table(spark, zones, "cdr_dw", "dim_date")
    if known is not None:
        lo, hi = known.agg(F.min("date"), F.max("date")).first()
        first, last = min(first, lo or first), max(last, hi or last)
    io.write_table(spark, zones, "cdr_dw", "dim_date", dims.dim_date(spark, first, last, profile))
    io.write_table(spark, zones, "cdr_dw", "dim_time", dims.dim_time(spark, profile))
    io.write_table(spark, zones, "cdr_dw", "dim_cell", dims.dim_cell(spark, _reference(ctx, "cells")))
    io.write_table(spark, zones, "cdr_dw", "dim_service", dims.dim_service(spark))
    io.write_table(spark, zones, "cdr_dw", "dim_device", dims.dim_device(spark, profile))
    io.write_table(spark, zones, "cdr_dw", "dim_tariff", dims.dim_tariff(spark, profile))
    ctx.log(f"dims: loaded as of {as_of}")


def _day(ctx: BatchContext, db: str, table: str, day: dt.date) -> DataFrame:
    return ctx.spark.table(f"{ctx.zones.db(db)}.{table}").filter(F.col("date") == F.lit(day))


def load_facts(ctx: BatchContext) -> None:
    spark, zones = ctx.spark, ctx.zones
    dw = zones.db("cdr_dw")
    dim_sub, tariffs, services = (spark.table(f"{dw}.{t}") for t in ("dim_subscriber", "dim_tariff", "dim_service"))
    months = set()
    for day in ctx.dates:
        events = facts.usage_events({rt: _day(ctx, "cdr_clean", rt, day).drop("date") for rt in RECORD_TYPES
                                     if spark.catalog.tableExists(f"{zones.db('cdr_clean')}.{rt}")})
        usage = facts.fact_usage(events, dim_sub, tariffs, services)
        io.write_partition(spark, zones, "cdr_dw", "fact_usage", usage, "date", day)
        daily = facts.fact_billing_daily(_day(ctx, "cdr_dw", "fact_usage", day))
        io.write_partition(spark, zones, "cdr_dw", "fact_billing", daily, "date", day, 2)
        months.add(day.strftime("%Y-%m"))
    for month in sorted(months):
        month_days = spark.table(f"{dw}.fact_billing").filter(F.date_format("date", "yyyy-MM") == month)
        lines = facts.invoice_lines(month_days, tariffs, month)
        io.write_partition(spark, zones, "cdr_dw", "fact_invoice_line", lines, "month_key", month, 2)
    ctx.log(f"facts: {len(ctx.dates)} day(s), invoices for {', '.join(sorted(months))}")


def load_features(ctx: BatchContext) -> None:
    spark, zones = ctx.spark, ctx.zones
    cells = spark.table(f"{zones.db('cdr_dw')}.dim_cell")
    for day in ctx.dates:
        usage = _day(ctx, "cdr_dw", "fact_usage", day).persist(StorageLevel.MEMORY_AND_DISK)
        for name, df in (("feature_cell_hourly", features.cell_hourly(usage)),
                         ("feature_region_hourly", features.region_hourly(usage, cells)),
                         ("feature_service_hourly", features.service_hourly(usage)),
                         ("feature_subscriber_daily", features.subscriber_daily(usage)),
                         ("feature_service_daily", features.service_daily(usage))):
            io.write_partition(spark, zones, "cdr_dw", name, df, "date", day, 1)
        usage.unpersist()
    daily = spark.table(f"{zones.db('cdr_dw')}.feature_service_daily")
    io.write_table(spark, zones, "cdr_dw", "feature_service_trends", features.service_trends(daily))
    ctx.log(f"features: {len(ctx.dates)} day(s)")


def detect(ctx: BatchContext) -> None:
    spark, zones = ctx.spark, ctx.zones
    cells = spark.table(f"{zones.db('cdr_dw')}.dim_cell")
    for day in ctx.dates:
        usage = _day(ctx, "cdr_dw", "fact_usage", day)
        cell_hours = _day(ctx, "cdr_dw", "feature_cell_hourly", day)
        found = anomalies.detect_all(usage, cell_hours, cells).filter(F.col("date") == F.lit(day))
        io.write_partition(spark, zones, "cdr_dw", "anomalies", found, "date", day, 1)
    ctx.log(f"anomalies: {len(ctx.dates)} day(s)")


def build_marts(ctx: BatchContext) -> None:
    spark, zones = ctx.spark, ctx.zones
    dw = zones.db("cdr_dw")
    tables = {t: spark.table(f"{dw}.{t}") for t in
              ("feature_service_daily", "feature_cell_hourly", "dim_cell", "fact_invoice_line", "dim_subscriber",
               "anomalies")}
    for name, df in marts.build(tables).items():
        io.write_table(spark, zones, "cdr_dw", name, df)
        io.write_swap(df, f"{zones.analytics}/exports/{name}/parquet", partitions=1)
        io.write_swap(df, f"{zones.analytics}/exports/{name}/csv", file_format="csv", partitions=1)
    ctx.log(f"marts: built and exported to {zones.analytics}/exports")


STEP_FUNCTIONS: dict[str, Callable[[BatchContext], None]] = {
    "land": land, "validate": validate, "dims": load_dims, "facts": load_facts, "features": load_features,
    "anomalies": detect, "marts": build_marts,
}


def run(ctx: BatchContext, step: str | None = None) -> None:
    for name in ([step] if step else STEPS):
        STEP_FUNCTIONS[name](ctx)
