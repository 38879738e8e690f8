"""Feature tables: hourly aggregates per cell, region and service, subscriber daily behaviour, and
service trends (7- and 28-day moving averages, growth). Inputs are fact_usage rows."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def _hour(df: DataFrame) -> DataFrame:
    return df.withColumn("hour", F.date_trunc("hour", "start_time"))


def _network_measures() -> list[Column]:
    voice = F.col("service") == "voice"
    return [
        F.count(F.lit(1)).alias("events"),
        F.count(F.when(voice, 1)).alias("call_attempts"),
        F.count(F.when(voice & (F.col("call_result") == "answered"), 1)).alias("calls_answered"),
        F.count(F.when(voice & (F.col("call_result") == "dropped"), 1)).alias("calls_dropped"),
        F.count(F.when(voice & (F.col("call_result") == "failed"), 1)).alias("calls_failed"),
        F.count(F.when(F.col("service") == "sms", 1)).alias("sms"),
        F.coalesce(F.sum("bytes_total"), F.lit(0)).alias("bytes"),
        F.countDistinct("subscriber_key").alias("distinct_subscribers"),
    ]


def _drop_rate(df: DataFrame) -> DataFrame:
    """Dropped calls over calls that got through (answered or dropped)."""
    through = F.col("calls_answered") + F.col("calls_dropped")
    return df.withColumn("drop_rate", F.when(through > 0, F.round(F.col("calls_dropped") / through, 4)))


def cell_hourly(usage: DataFrame) -> DataFrame:
    return _drop_rate(_hour(usage).groupBy("date", "hour", "cell_id").agg(*_network_measures()))


def region_hourly(usage: DataFrame, cells: DataFrame) -> DataFrame:
    located = usage.join(F.broadcast(cells.select("cell_id", "region", "region_code")), "cell_id", "left")
    region = located.withColumn("region", F.coalesce("region", F.when(F.col("roaming"), F.lit("roaming abroad"))
                                                     .otherwise(F.lit("unknown"))))
    return _drop_rate(_hour(region).groupBy("date", "hour", "region", "region_code").agg(*_network_measures()))


def service_hourly(usage: DataFrame) -> DataFrame:
    return (_hour(usage).groupBy("date", "hour", "service")
            .agg(F.count(F.lit(1)).alias("events"), F.countDistinct("subscriber_key").alias("distinct_subscribers"),
                 F.coalesce(F.sum("duration_s"), F.lit(0)).alias("duration_s"),
                 F.coalesce(F.sum("bytes_total"), F.lit(0)).alias("bytes"),
                 F.round(F.sum("rated_charge_dzd"), 2).alias("rated_charge_dzd")))


def subscriber_daily(usage: DataFrame) -> DataFrame:
    call = F.col("service").isin("voice", "voip", "ims")
    mo, mt = F.col("direction") == "MO", F.col("direction") == "MT"
    return (usage.groupBy("date", "subscriber_key").agg(
        F.count(F.when(call & mo, 1)).alias("calls_out"),
        F.count(F.when(call & mt, 1)).alias("calls_in"),
        F.countDistinct(F.when(call & mo, F.col("other_party_key"))).alias("distinct_callees"),
        F.count(F.when(call & F.col("other_party_international"), 1)).alias("international_calls"),
        F.coalesce(F.sum(F.when(call, F.col("duration_s"))), F.lit(0)).alias("call_seconds"),
        F.count(F.when((F.col("service") == "sms") & mo, 1)).alias("sms_out"),
        F.count(F.when(F.col("service") == "data", 1)).alias("data_sessions"),
        F.coalesce(F.sum("bytes_total"), F.lit(0)).alias("bytes"),
        F.countDistinct("cell_id").alias("distinct_cells"),
        F.count(F.when(F.col("roaming"), 1)).alias("roaming_events"),
        F.round(F.sum("rated_charge_dzd"), 2).alias("rated_charge_dzd")))


def service_daily(usage: DataFrame) -> DataFrame:
    return (usage.groupBy("date", "service")
            .agg(F.count(F.lit(1)).alias("events"), F.countDistinct("subscriber_key").alias("distinct_subscribers"),
                 F.round(F.sum("rated_charge_dzd"), 2).alias("rated_charge_dzd")))


def service_trends(daily: DataFrame) -> DataFrame:
    """Moving averages and growth per service over the daily history given (from service_daily)."""
    by_day = Window.partitionBy("service").orderBy("date")
    days = F.col("date").cast("timestamp").cast("long") / 86400

    def ma(n: int) -> Column:
        frame = Window.partitionBy("service").orderBy(days).rangeBetween(-(n - 1), 0)
        return F.round(F.avg("events").over(frame), 2)

    def growth(lag: int) -> Column:
        prev = F.lag("events", lag).over(by_day)
        return F.when(prev > 0, F.round((F.col("events") - prev) / prev, 4))

    return daily.select("date", "service", "events", ma(7).alias("events_ma7"), ma(28).alias("events_ma28"),
                        growth(1).alias("growth_day"), growth(7).alias("growth_week"))
