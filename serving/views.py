"""The batch views of the serving layer: pure functions of the warehouse's tables (Spark).

Each view has the columns of its table in serving/schema.sql, ``day`` first. The cell and service
hours count exactly what the speed layer's per-minute KPIs count (streaming/flink/rules.py
``kpis_per_cell``, ``kpis_per_service``), so that a day reads the same from either layer.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def _count(condition: Column) -> Column:
    return F.count(F.when(condition, 1))


def _answered() -> Column:
    return F.col("call_result") == "answered"


def _dropped_or_failed() -> Column:
    return F.col("call_result").isin("failed", "dropped")


def _hourly(usage: DataFrame) -> DataFrame:
    return usage.withColumn("day", F.col("date")).withColumn("hour_start", F.date_trunc("hour", "start_time"))


def cell_hour(usage: DataFrame) -> DataFrame:
    """Per landed day, hour and cell: voice attempts, answered, dropped or failed, SMS, bytes."""
    return (_hourly(usage).groupBy("day", "hour_start", "cell_id").agg(
        _count(F.col("service") == "voice").alias("call_attempts"),
        _count(_answered()).alias("answered"),
        _count(_dropped_or_failed()).alias("dropped_or_failed"),
        _count(F.col("service") == "sms").alias("sms"),
        F.coalesce(F.sum("bytes_total"), F.lit(0)).cast("long").alias("data_bytes")))


def service_hour(usage: DataFrame) -> DataFrame:
    """Per landed day, hour and record type: records, answered, dropped or failed, bytes, and what
    only the batch knows: seconds of calls and the rated charge."""
    return (_hourly(usage).groupBy("day", "hour_start", "service").agg(
        F.count(F.lit(1)).alias("records"),
        _count(_answered()).alias("answered"),
        _count(_dropped_or_failed()).alias("dropped_or_failed"),
        F.coalesce(F.sum("bytes_total"), F.lit(0)).cast("long").alias("data_bytes"),
        F.coalesce(F.sum("duration_s"), F.lit(0)).cast("long").alias("duration_s"),
        F.coalesce(F.round(F.sum("rated_charge_dzd"), 2), F.lit(0.0)).cast("decimal(16,2)").alias("rated_charge_dzd")))


def subscriber_day(usage: DataFrame) -> DataFrame:
    """Per landed day and subscriber (pseudonym): calls, SMS, data, roaming and the rated charge."""
    call = F.col("service").isin("voice", "voip", "ims")
    mo, mt = F.col("direction") == "MO", F.col("direction") == "MT"
    return (usage.withColumn("day", F.col("date")).groupBy("day", "subscriber_key").agg(
        F.max("plan").alias("plan"),
        _count(call & mo).alias("calls_out"),
        _count(call & mt).alias("calls_in"),
        F.coalesce(F.sum(F.when(call, F.col("duration_s"))), F.lit(0)).cast("long").alias("call_seconds"),
        _count((F.col("service") == "sms") & mo).alias("sms_out"),
        _count(F.col("service") == "data").alias("data_sessions"),
        F.coalesce(F.sum("bytes_total"), F.lit(0)).cast("long").alias("data_bytes"),
        _count(F.col("roaming")).alias("roaming_events"),
        F.coalesce(F.round(F.sum("rated_charge_dzd"), 2), F.lit(0.0)).cast("decimal(16,2)").alias("rated_charge_dzd")))


def revenue_day(usage: DataFrame) -> DataFrame:
    """Per landed day, service, billing category and plan: events, units and the rated charge."""
    return (usage.withColumn("day", F.col("date")).withColumn("plan", F.coalesce("plan", F.lit("unknown")))
            .withColumn("billing_category", F.coalesce("billing_category", F.lit("unrated")))
            .groupBy("day", "service", "billing_category", "plan").agg(
                F.count(F.lit(1)).alias("events"),
                F.coalesce(F.sum("units"), F.lit(0.0)).alias("units"),
                F.coalesce(F.round(F.sum("rated_charge_dzd"), 2), F.lit(0.0)).cast("decimal(16,2)")
                .alias("rated_charge_dzd")))


def anomalies(found: DataFrame) -> DataFrame:
    """cdr_dw.anomalies rows as the serving table holds them."""
    return found.select(F.col("date").alias("day"), "scenario", "entity_type", "entity_id", "window_start",
                        "window_end", F.col("score").cast("double"), "method")


def records_day(reconciliation: DataFrame) -> DataFrame:
    """cdr_ops.reconciliation: what the batch did with each record type's records of a day."""
    return (reconciliation.groupBy(F.col("date").alias("day"), "record_type")
            .agg(*[F.sum(c).cast("long").alias(c)
                   for c in ("records_in", "clean", "quarantined", "duplicates", "files_rejected")]))


def build(usage: DataFrame, found: DataFrame, reconciliation: DataFrame) -> dict[str, DataFrame]:
    """Every batch view (keyed by its serving table's name) of the rows given."""
    return {"batch_cell_hour": cell_hour(usage), "batch_service_hour": service_hour(usage),
            "batch_subscriber_day": subscriber_day(usage), "batch_revenue_day": revenue_day(usage),
            "batch_anomalies": anomalies(found), "batch_records_day": records_day(reconciliation)}
