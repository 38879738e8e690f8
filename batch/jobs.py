"""The batch chain: land -> validate -> dims -> facts -> features -> anomalies -> marts.

Each step reads the tables of the previous one and replaces exactly the date partitions it
processes (write, then swap), so a step or the whole chain can be rerun for any dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdr.contract import CELLS, RECORD_TYPES, SUBSCRIBERS
from cdr.errors import BadInput, DataLoss
from cdr.profile import Profile
from cdr.settings import get_settings
from cdr.validation import rules_for

from batch import STEPS, anomalies, dims, facts, features, io, marts
from batch.frames import ARROW_CONF, local_frame
from batch.pseudonymise import identifier_columns, pads_frame, pseudonymise_columns
from batch.read import SOURCE_FILE, read_cdr, read_reference
from batch.validate import clean_records, quarantine_records, reconciliation, tag_records

FORMATS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl", "json": "jsonl"}
# What the chain needs of its Spark session (batch.cli's session, the benchmark's and the tests').
SPARK_CONF = {**ARROW_CONF, **io.WRITE_CONF}
LANDED = "landed_date"
# cdr_ops.reconciliation (the columns of validate.reconciliation).
RECONCILIATION_SCHEMA = ("batch_id string, record_type string, records_in bigint, clean bigint, quarantined bigint, "
                         "duplicates bigint, date date, files_rejected bigint, balanced boolean")


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
    warehouse: io.Warehouse = field(init=False)
    # Seconds per step of the last `run`.
    step_seconds: dict[str, float] = field(default_factory=dict, init=False)
    # The reconciliation rows (validate.reconciliation's columns) the validate step wrote, if it ran.
    reconciliation: list[dict] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.warehouse = io.Warehouse(self.spark, self.zones)


def _format_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    # Files without an extension are the speed layer's bronze Parquet (Flink names its part files so).
    if "." not in name:
        return "parquet"
    try:
        return FORMATS[name.rsplit(".", 1)[-1]]
    except KeyError:
        raise BadInput(f"{path} is not a data file the batch layer reads",
                       f"CDR and reference files are .{', .'.join(FORMATS)}") from None


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
        empty = local_frame(spark, [], spark_schema(rt)).withColumn("date", F.lit(None).cast("string"))
        name = io.register_table(spark, zones, "cdr_raw", rt_name, empty, partition_column="date", using=using,
                                 location=folder, options=options)
        spark.sql(f"ALTER TABLE {name} ADD IF NOT EXISTS " + " ".join(f"PARTITION (`date`='{d[5:]}')" for d in days))


def _reference(ctx: BatchContext, name: str) -> DataFrame:
    folder = f"{ctx.zones.raw}/reference/{name}"
    files = io.list_files(ctx.spark, folder)
    if not files:
        raise BadInput(f"no {name} reference data in {folder}", "run the land step with --input DATASET")
    rt = SUBSCRIBERS if name == "subscribers" else CELLS
    return read_reference(ctx.spark, folder, rt, _format_of(files[0]))


def batch_id(spark: SparkSession, day: dt.date, files: list[str]) -> str:
    """Deterministic id of a day's batch: its date and a digest of its input files and sizes,
    so rerunning the same input writes the same rows."""
    digest = hashlib.sha256()
    for path, size in zip(files, io.file_sizes(spark, files)):
        digest.update(f"{path.rsplit('/', 3)[-3:]}:{size};".encode())
    return f"{day}-{digest.hexdigest()[:12]}"


def _landed_date(path: Column) -> Column:
    """The day a raw file was landed for: its ``date=`` folder (raw/cdr/record_type=<t>/date=<D>/)."""
    return F.to_date(F.regexp_extract(path, r"/date=([0-9]{4}-[0-9]{2}-[0-9]{2})/[^/]*$", 1))


def _per_day(values: dict[dt.date, object]) -> Column:
    """A column taking, on each row, the value given for its ``date``."""
    return F.create_map(*[F.lit(x) for d, v in values.items() for x in (d, v)])[F.col("date")]


def validate(ctx: BatchContext) -> None:
    """raw -> clean (pseudonymised) + quarantine + one reconciliation row per record type and day.

    Each record type's days are read, tagged (deduplicated within each day) and written in one pass;
    the quarantine of all types and the reconciliation counts come from the same cached rows."""
    spark, zones = ctx.spark, ctx.zones
    cells = _reference(ctx, "cells").cache()
    pads = pads_frame(spark, ctx.key)
    by = ("date",)
    files = {(rt, day): io.list_files(spark, f"{zones.raw}/cdr/record_type={rt}/date={day}")
             for day in ctx.dates for rt in RECORD_TYPES}
    bids = {day: batch_id(spark, day, [f for rt in RECORD_TYPES for f in files[rt, day]]) for day in ctx.dates}
    quarantined, counts, cached, rejected_by = [], [], [], {}
    for rt_name, rt in RECORD_TYPES.items():
        paths = [f for day in ctx.dates for f in files[rt_name, day]]
        if not paths:
            continue
        raw, rejected = read_cdr(spark, paths, rt, _format_of(paths[0]))
        for bad in rejected:
            ctx.log(f"validate: rejected file {bad.path}: {bad.reason}")
        rejected_by[rt_name] = {day: [r for r in rejected if f"/date={day}/" in r.path] for day in ctx.dates}
        n_rejected = _per_day({day: len(r) for day, r in rejected_by[rt_name].items()})
        tagged = tag_records(raw.withColumn("date", _landed_date(F.col(SOURCE_FILE))), rules_for(rt, ctx.profile),
                             cells, ctx.reference_time, by).persist(StorageLevel.MEMORY_AND_DISK)
        clean = facts.enrich_clean(clean_records(tagged, rt, by), ctx.profile.country_code)
        clean = pseudonymise_columns(clean, identifier_columns(rt), pads)
        days = [d for d in ctx.dates if files[rt_name, d]]
        ctx.warehouse.write_partitions("cdr_clean", rt_name, clean, "date", days)
        quarantined.append(quarantine_records(tagged, rt, _per_day(bids), by)
                           .unionByName(_rejected_files(spark, rejected_by[rt_name], rt_name, bids)))
        counts.append(reconciliation(tagged, rt, _per_day(bids), n_rejected, by))
        cached.append(tagged)
    if not cached:
        return
    landed = [d for d in ctx.dates if any(files[rt, d] for rt in RECORD_TYPES)]  # others stay untouched
    recon = _reconciliation_rows(_union(counts).collect(), rejected_by, files, bids)
    ctx.reconciliation = recon
    ctx.warehouse.write_partitions("cdr_ops", "quarantine", _union(quarantined), "date", landed, 1)
    for tagged in cached:  # kept until the quarantine is written from them
        tagged.unpersist()
    ctx.warehouse.write_partitions("cdr_ops", "reconciliation", local_frame(spark, recon, RECONCILIATION_SCHEMA),
                                   "date", landed, 1)
    order = list(RECORD_TYPES)
    for r in sorted(recon, key=lambda r: (r["date"], order.index(r["record_type"]))):
        ctx.log(f"validate {r['date']} {r['record_type']:<5}: in {r['records_in']} = clean {r['clean']} "
                f"+ quarantined {r['quarantined']} + duplicates {r['duplicates']} "
                f"({'balanced' if r['balanced'] else 'NOT BALANCED'})")
    unbalanced = [f"{r['date']} {r['record_type']}" for r in recon if not r["balanced"]]
    if unbalanced:  # a record neither clean, quarantined nor a duplicate: stop before the warehouse
        raise DataLoss(f"the reconciliation does not balance for {', '.join(unbalanced)}",
                       f"see {zones.db('cdr_ops')}.reconciliation; the later steps did not run")


def _union(frames: list[DataFrame]) -> DataFrame:
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out


def _reconciliation_rows(counted: list, rejected_by: dict, files: dict, bids: dict) -> list[dict]:
    """The counted rows, plus a row of zeros for a type and day whose every file was rejected
    (no record to count, but the rejected files are reported)."""
    rows = [r.asDict() for r in counted]
    seen = {(r["record_type"], r["date"]) for r in rows}
    for (rt, day), paths in files.items():
        if paths and (rt, day) not in seen:
            rows.append(dict(batch_id=bids[day], record_type=rt, records_in=0, clean=0, quarantined=0, duplicates=0,
                             date=day, files_rejected=len(rejected_by[rt][day]), balanced=True))
    return rows


def _rejected_files(spark: SparkSession, rejected: dict[dt.date, list], record_type: str,
                    bids: dict[dt.date, str]) -> DataFrame:
    rows = [(bids[day], record_type, None, "unparseable", r.reason, None, r.path, day)
            for day, found in rejected.items() for r in found]
    return local_frame(spark, rows, "batch_id string, record_type string, record_id string, rule_code string, "
                                    "reason string, raw_record string, source_file string, date date")


def load_dims(ctx: BatchContext) -> None:
    """Dimensions; the subscriber snapshot is loaded as of the last processed day (SCD2)."""
    spark, zones, profile, dw = ctx.spark, ctx.zones, ctx.profile, ctx.warehouse
    pads = pads_frame(spark, ctx.key)
    as_of = max(ctx.dates)
    subs = pseudonymise_columns(_reference(ctx, "subscribers"), identifier_columns(SUBSCRIBERS), pads)
    current = io.read_table(spark, zones, "cdr_dw", "dim_subscriber")
    dim = dims.scd2_subscribers(current, dims.subscriber_snapshot(subs, as_of), as_of)
    dw.write_table("cdr_dw", "dim_subscriber", dim, partitions=2)
    # The calendar keeps every year it already had, so reprocessing another range never shrinks it.
    first, last = min(ctx.dates), max(ctx.dates)
    known = io.read_table(spark, zones, "cdr_dw", "dim_date")
    if known is not None:
        lo, hi = known.agg(F.min("date"), F.max("date")).first()
        first, last = min(first, lo or first), max(last, hi or last)
    dw.write_table("cdr_dw", "dim_date", dims.dim_date(spark, first, last, profile))
    dw.write_table("cdr_dw", "dim_time", dims.dim_time(spark, profile))
    dw.write_table("cdr_dw", "dim_cell", dims.dim_cell(spark, _reference(ctx, "cells")))
    dw.write_table("cdr_dw", "dim_service", dims.dim_service(spark))
    dw.write_table("cdr_dw", "dim_device", dims.dim_device(spark, profile))
    dw.write_table("cdr_dw", "dim_tariff", dims.dim_tariff(spark, profile))
    ctx.log(f"dims: loaded as of {as_of}")


def _days(ctx: BatchContext, db: str, table: str) -> DataFrame:
    """The run's days of a partitioned table."""
    return ctx.spark.table(f"{ctx.zones.db(db)}.{table}").filter(F.col("date").isin(*ctx.dates))


def load_facts(ctx: BatchContext) -> None:
    spark, zones = ctx.spark, ctx.zones
    dw = zones.db("cdr_dw")
    dim_sub, tariffs, services = (spark.table(f"{dw}.{t}") for t in ("dim_subscriber", "dim_tariff", "dim_service"))
    # A record stays in the partition of the day it was landed for, whatever its start_time says.
    events = facts.usage_events({rt: _days(ctx, "cdr_clean", rt).withColumnRenamed("date", LANDED)
                                 for rt in RECORD_TYPES if spark.catalog.tableExists(f"{zones.db('cdr_clean')}.{rt}")})
    usage = facts.fact_usage(events, dim_sub, tariffs, services, partition=LANDED)
    ctx.warehouse.write_partitions("cdr_dw", "fact_usage", usage, "date", ctx.dates)
    daily = facts.fact_billing_daily(_days(ctx, "cdr_dw", "fact_usage"))
    ctx.warehouse.write_partitions("cdr_dw", "fact_billing", daily, "date", ctx.dates, 2)
    months = sorted({day.strftime("%Y-%m") for day in ctx.dates})
    billing = spark.table(f"{dw}.fact_billing")
    lines = _union([facts.invoice_lines(billing.filter(F.date_format("date", "yyyy-MM") == month), tariffs, month)
                    for month in months])
    ctx.warehouse.write_partitions("cdr_dw", "fact_invoice_line", lines, "month_key", months, 2)
    ctx.log(f"facts: {len(ctx.dates)} day(s), invoices for {', '.join(months)}")


def load_features(ctx: BatchContext) -> None:
    spark, zones = ctx.spark, ctx.zones
    cells = spark.table(f"{zones.db('cdr_dw')}.dim_cell")
    usage = _days(ctx, "cdr_dw", "fact_usage")
    for name, df in (("feature_cell_hourly", features.cell_hourly(usage)),
                     ("feature_region_hourly", features.region_hourly(usage, cells)),
                     ("feature_service_hourly", features.service_hourly(usage)),
                     ("feature_subscriber_daily", features.subscriber_daily(usage)),
                     ("feature_service_daily", features.service_daily(usage))):
        ctx.warehouse.write_partitions("cdr_dw", name, df, "date", ctx.dates, 1)
    daily = spark.table(f"{zones.db('cdr_dw')}.feature_service_daily")
    ctx.warehouse.write_table("cdr_dw", "feature_service_trends", features.service_trends(daily))
    ctx.log(f"features: {len(ctx.dates)} day(s)")


def _day(ctx: BatchContext, db: str, table: str, day: dt.date) -> DataFrame:
    return ctx.spark.table(f"{ctx.zones.db(db)}.{table}").filter(F.col("date") == F.lit(day))


def detect(ctx: BatchContext) -> None:
    """Each day is scored on its own rows (baselines and sequences do not cross days); the days'
    anomalies are written together."""
    spark, zones = ctx.spark, ctx.zones
    cells = spark.table(f"{zones.db('cdr_dw')}.dim_cell")
    usage = _days(ctx, "cdr_dw", "fact_usage")
    found = _union([anomalies.detect_all(usage.filter(F.col("date") == F.lit(day)),
                                         _day(ctx, "cdr_dw", "feature_cell_hourly", day), cells)
                    .filter(F.col("date") == F.lit(day)) for day in ctx.dates])
    ctx.warehouse.write_partitions("cdr_dw", "anomalies", found, "date", ctx.dates, 1)
    ctx.log(f"anomalies: {len(ctx.dates)} day(s)")


def build_marts(ctx: BatchContext) -> None:
    spark, zones = ctx.spark, ctx.zones
    dw = zones.db("cdr_dw")
    tables = {t: spark.table(f"{dw}.{t}") for t in
              ("feature_service_daily", "feature_cell_hourly", "dim_cell", "fact_invoice_line", "dim_subscriber",
               "anomalies")}
    for name, df in marts.build(tables).items():
        ctx.warehouse.write_table("cdr_dw", name, df)
        io.write_swap(df, f"{zones.analytics}/exports/{name}/parquet", partitions=1)
        io.write_swap(df, f"{zones.analytics}/exports/{name}/csv", file_format="csv", partitions=1)
    ctx.log(f"marts: built and exported to {zones.analytics}/exports")


def publish(ctx: BatchContext) -> None:
    """The days' serving views into PostgreSQL, each day swapped in atomically (serving.publish)."""
    from serving.publish import publish as publish_days

    zones = ctx.zones
    publish_days(lambda db, table: ctx.spark.table(f"{zones.db(db)}.{table}"), ctx.dates, get_settings(),
                 log=ctx.log)


STEP_FUNCTIONS: dict[str, Callable[[BatchContext], None]] = {
    "land": land, "validate": validate, "dims": load_dims, "facts": load_facts, "features": load_features,
    "anomalies": detect, "marts": build_marts, "publish": publish,
}


def run(ctx: BatchContext, steps: Sequence[str] = ()) -> None:
    """Every step in order (or the given ones, in the chain's order), timed into ``ctx.step_seconds``;
    the whole chain ends by publishing its days to the serving layer unless settings [serving]
    publish_after_batch is off."""
    chain = [s for s in STEPS if s != "publish" or get_settings().serving.publish_after_batch]
    for name in ([s for s in STEPS if s in steps] if steps else chain):
        t0 = time.perf_counter()
        STEP_FUNCTIONS[name](ctx)
        ctx.step_seconds[name] = time.perf_counter() - t0
        ctx.log(f"{name}: done in {ctx.step_seconds[name]:.1f} s")
