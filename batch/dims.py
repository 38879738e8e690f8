"""Dimensions of the star schema in ``cdr_dw`` (pure functions; the profile and reference data in).

Subscribers keep their plan history as SCD type 2: a plan change closes the current row the day
before and opens a new one; other attributes (region, status, tenure) are overwritten in place
(type 1), so reloading the same snapshot for the same day changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch.frames import local_frame
from cdr.contract import RECORD_TYPES
from cdr.geo import haversine_km
from cdr.profile import Profile

OPEN_END = dt.date(9999, 12, 31)
SCD2_ATTRIBUTE = "plan"
TYPE1_ATTRIBUTES = ("line_type", "payment", "segment", "region", "region_code", "home_cell_id",
                    "activation_date", "status", "tenure_days")
SUBSCRIBER_COLUMNS = ("subscriber_key", "imsi_key", SCD2_ATTRIBUTE, *TYPE1_ATTRIBUTES,
                      "valid_from", "valid_to", "is_current")


def subscriber_snapshot(subscribers: DataFrame, as_of: dt.date) -> DataFrame:
    """Pseudonymised subscribers (msisdn, imsi already keys) -> dimension attributes as of a day."""
    return subscribers.select(
        F.col("msisdn").alias("subscriber_key"), F.col("imsi").alias("imsi_key"), "plan",
        "line_type", "payment", "segment", "region", "region_code", "home_cell_id", "activation_date",
        "status", F.datediff(F.lit(as_of), F.col("activation_date")).alias("tenure_days"))


def scd2_subscribers(current: DataFrame | None, snapshot: DataFrame, as_of: dt.date) -> DataFrame:
    """The dimension after loading ``snapshot`` (from ``subscriber_snapshot``) for day ``as_of``."""
    fresh = snapshot.select(
        *[F.col(c) for c in snapshot.columns],
        F.col("activation_date").alias("valid_from"), F.lit(OPEN_END).alias("valid_to"),
        F.lit(True).alias("is_current"))
    if current is None:
        return fresh.select(*SUBSCRIBER_COLUMNS)
    history = current.filter(~F.col("is_current"))
    live = current.filter(F.col("is_current"))
    s = snapshot.alias("s")
    c = live.alias("c")
    joined = c.join(s, F.col("c.subscriber_key") == F.col("s.subscriber_key"), "full_outer")
    in_both = F.col("c.subscriber_key").isNotNull() & F.col("s.subscriber_key").isNotNull()
    changed = in_both & (F.col("c.plan") != F.col("s.plan"))
    before = F.lit(as_of - dt.timedelta(days=1))
    # Unchanged or changed-in-place rows: type-1 attributes from the snapshot, plan from the row.
    kept = joined.filter(F.col("c.subscriber_key").isNotNull()).select(
        F.col("c.subscriber_key").alias("subscriber_key"),
        *[F.coalesce(F.col(f"s.{a}"), F.col(f"c.{a}")).alias(a) for a in ("imsi_key",)],
        F.col("c.plan").alias("plan"),
        *[F.when(in_both, F.col(f"s.{a}")).otherwise(F.col(f"c.{a}")).alias(a) for a in TYPE1_ATTRIBUTES],
        F.col("c.valid_from").alias("valid_from"),
        F.when(changed, before).otherwise(F.col("c.valid_to")).alias("valid_to"),
        (~changed).alias("is_current"))
    opened = joined.filter(changed | F.col("c.subscriber_key").isNull()).select(
        *[F.col(f"s.{col}").alias(col) for col in snapshot.columns],
        F.when(changed, F.lit(as_of)).otherwise(F.col("s.activation_date")).alias("valid_from"),
        F.lit(OPEN_END).alias("valid_to"), F.lit(True).alias("is_current"))
    return (history.select(*SUBSCRIBER_COLUMNS).unionByName(kept.select(*SUBSCRIBER_COLUMNS))
            .unionByName(opened.select(*SUBSCRIBER_COLUMNS)))


def dim_date(spark: SparkSession, first: dt.date, last: dt.date, profile: Profile) -> DataFrame:
    """One row per day of the whole years spanning ``first``..``last`` (stable under reruns)."""
    start, end = dt.date(first.year, 1, 1), dt.date(last.year, 12, 31)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    rows = [(int(d.strftime("%Y%m%d")), d, d.year, (d.month - 1) // 3 + 1, d.month, d.strftime("%Y-%m"), d.day,
             d.strftime("%A"), d.strftime("%A") in profile.weekend, profile.in_ramadan(d))
            for d in days]
    return local_frame(spark, rows, "date_key int, date date, year int, quarter int, month int, "
                                    "month_key string, day int, weekday string, is_weekend boolean, "
                                    "is_ramadan boolean")


def day_period(local_hour: int) -> str:
    return ("night" if local_hour < 6 else "morning" if local_hour < 12
            else "afternoon" if local_hour < 18 else "evening")


def dim_time(spark: SparkSession, profile: Profile) -> DataFrame:
    """One row per minute of the day (UTC key) with the local hour and the period of the local day."""
    rows = []
    for minute in range(1440):
        hour = minute // 60
        local = (hour + profile.timezone_offset_h) % 24
        rows.append((minute, hour, minute % 60, local, day_period(local)))
    return local_frame(spark, rows, "time_key int, hour_utc int, minute int, local_hour int, day_period string")


def nearest_site_km(lat: np.ndarray, lon: np.ndarray, operator: np.ndarray) -> np.ndarray:
    """Distance from each cell to the nearest other site (other coordinates) of the same operator;
    a subscriber's normal mobility reaches that far, in the desert hundreds of km."""
    out = np.full(len(lat), np.nan)
    for op in np.unique(operator):
        idx = np.flatnonzero(operator == op)
        for start in range(0, len(idx), 1024):  # block-wise: memory stays bounded
            block = idx[start:start + 1024]
            d = haversine_km(lat[block, None], lon[block, None], lat[None, idx], lon[None, idx])
            d[d < 0.01] = np.inf  # sectors of the same site
            out[block] = d.min(axis=1)
    return np.where(np.isfinite(out), out, 0.0)


def dim_cell(spark: SparkSession, cells: DataFrame) -> DataFrame:
    """Cells with region, coordinates, technology and the distance to the nearest other site."""
    rows = cells.select("cell_id", "operator", "region", "region_code", "latitude", "longitude",
                        "technology").orderBy("cell_id").collect()
    lat = np.array([r["latitude"] for r in rows], dtype=float)
    lon = np.array([r["longitude"] for r in rows], dtype=float)
    op = np.array([r["operator"] for r in rows])
    near = nearest_site_km(lat, lon, op) if rows else np.array([])
    data = [(*r, bool(re.match(r"^[0-9]{5}-", r["cell_id"])), float(round(k, 3))) for r, k in zip(rows, near)]
    return local_frame(spark, data, "cell_id string, operator string, region string, region_code int, "
                                    "latitude double, longitude double, technology string, "
                                    "is_radio_cell boolean, nearest_site_km double")


SERVICES = {
    "voice": ("Voice call", "minute"), "sms": ("Short message", "message"), "data": ("Data session", "MB"),
    "voip": ("VoIP call", "minute"), "ims": ("IMS session", "minute"),
}


def dim_service(spark: SparkSession) -> DataFrame:
    rows = [(i + 1, name, *SERVICES[name]) for i, name in enumerate(RECORD_TYPES)]
    return local_frame(spark, rows, "service_key int, service string, description string, billing_unit string")


def dim_device(spark: SparkSession, profile: Profile) -> DataFrame:
    """Handset models by TAC (the first 8 IMEI digits: a model, not a person)."""
    rows = [(d.tac, d.brand, d.model, d.technology) for d in profile.devices]
    return local_frame(spark, rows, "tac string, brand string, model string, technology string")


def dim_tariff(spark: SparkSession, profile: Profile) -> DataFrame:
    fields = T.StructType([
        T.StructField("plan", T.StringType()), T.StructField("line_type", T.StringType()),
        T.StructField("payment", T.StringType()), T.StructField("segment", T.StringType()),
        T.StructField("monthly_fee_dzd", T.DoubleType()), T.StructField("voice_min_included", T.DoubleType()),
        T.StructField("sms_included", T.DoubleType()), T.StructField("data_mb_included", T.DoubleType()),
        T.StructField("voice_per_min_dzd", T.DoubleType()),
        T.StructField("voice_per_min_international_dzd", T.DoubleType()),
        T.StructField("sms_each_dzd", T.DoubleType()), T.StructField("data_per_mb_dzd", T.DoubleType()),
        T.StructField("unlimited_data", T.BooleanType()), T.StructField("vat_rate", T.DoubleType()),
    ])
    rows = [(p.code, p.line_type, p.payment, p.segment, float(p.monthly_fee), float(p.voice_min), float(p.sms),
             float(p.data_mb), float(p.voice_per_min), float(p.voice_per_min_international), float(p.sms_each),
             float(p.data_per_mb), bool(p.unlimited_data), float(profile.vat_rate)) for p in profile.plans]
    return local_frame(spark, rows, fields)
