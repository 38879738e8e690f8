"""BI marts: small, denormalised tables for Superset (through the Thrift server) and file exports."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def service_daily(service_daily_features: DataFrame) -> DataFrame:
    return service_daily_features.select("date", "service", "events", "distinct_subscribers", "rated_charge_dzd")


def cell_daily(cell_hourly: DataFrame, dim_cell: DataFrame) -> DataFrame:
    daily = cell_hourly.groupBy("date", "cell_id").agg(
        F.sum("events").alias("events"), F.sum("call_attempts").alias("call_attempts"),
        F.sum("calls_answered").alias("calls_answered"), F.sum("calls_dropped").alias("calls_dropped"),
        F.sum("calls_failed").alias("calls_failed"), F.sum("bytes").alias("bytes"))
    through = F.col("calls_answered") + F.col("calls_dropped")
    return (daily.join(dim_cell.select("cell_id", "operator", "region", "technology"), "cell_id", "left")
            .withColumn("drop_rate", F.when(through > 0, F.round(F.col("calls_dropped") / through, 4))))


def revenue_monthly(invoice_lines: DataFrame, dim_subscriber: DataFrame) -> DataFrame:
    regions = dim_subscriber.filter("is_current").select("subscriber_key", "region")
    return (invoice_lines.join(regions, "subscriber_key", "left")
            .groupBy("month_key", "plan", "region")
            .agg(F.countDistinct("subscriber_key").alias("subscribers"),
                 F.round(F.sum(F.when(~F.col("line").isin("vat", "total"), F.col("amount_dzd"))), 2)
                 .alias("subtotal_dzd"),
                 F.round(F.sum(F.when(F.col("line") == "vat", F.col("amount_dzd"))), 2).alias("vat_dzd"),
                 F.round(F.sum(F.when(F.col("line") == "total", F.col("amount_dzd"))), 2).alias("total_dzd")))


def anomalies_daily(anomalies: DataFrame) -> DataFrame:
    return anomalies.groupBy("date", "scenario", "method").agg(
        F.count(F.lit(1)).alias("anomalies"), F.round(F.max("score"), 3).alias("max_score"))


def build(tables: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Every mart by name, from the cdr_dw tables they summarise."""
    return {
        "mart_service_daily": service_daily(tables["feature_service_daily"]),
        "mart_cell_daily": cell_daily(tables["feature_cell_hourly"], tables["dim_cell"]),
        "mart_revenue_monthly": revenue_monthly(tables["fact_invoice_line"], tables["dim_subscriber"]),
        "mart_anomalies_daily": anomalies_daily(tables["anomalies"]),
    }
