"""Facts of ``cdr_dw``: usage (one row per clean CDR, rated), daily billing, monthly invoice lines.

Rating uses the operator profile's tariff plans (dim_tariff): a record is charged at list price
(``rated_charge_dzd``) when it is billable (an answered outgoing call, a delivered outgoing SMS,
a data session); bundles are applied per month on the invoice, where included minutes, messages
and megabytes are deducted before charging and VAT is added.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

MB = 1_048_576
# Invoice categories: what bundles cover ("included" column of dim_tariff) and how units are priced.
CATEGORIES = {
    "voice": ("voice_min_included", "voice_per_min_dzd"),
    "voice_international": (None, "voice_per_min_international_dzd"),
    "sms": ("sms_included", "sms_each_dzd"),
    "data": ("data_mb_included", "data_per_mb_dzd"),
}


def enrich_clean(clean: DataFrame, country_code: str) -> DataFrame:
    """Facts derived from raw identifiers, computed before they are pseudonymised: the device's
    TAC (a handset model, not a person) and whether the other party is abroad."""
    out = clean.withColumn("device_tac", F.substring("served_imei", 1, 8))
    if "other_party" in clean.columns:
        return out.withColumn("other_party_international",
                              F.col("other_party").isNotNull() & ~F.col("other_party").startswith(country_code))
    return out.withColumn("other_party_international", F.lit(False))


def usage_events(clean_by_type: dict[str, DataFrame]) -> DataFrame:
    """Clean records of every type in one frame (fields a type lacks are null)."""
    frames = list(clean_by_type.values())
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df, allowMissingColumns=True)
    return out


def _billing_category(e: DataFrame) -> Column:
    t = F.col("record_type")
    call = t.isin("voice", "voip") & (F.col("direction") == "MO") & (F.col("duration_s") > 0) & \
        F.coalesce(F.col("call_result") == "answered", F.lit(True))
    ims_call = (t == "ims") & (F.col("ims_service") != "rcs") & (F.col("sip_status") == 200) & (F.col("duration_s") > 0)
    is_call = call | ims_call
    sms = (t == "sms") & (F.col("direction") == "MO") & (F.col("sms_status") == "delivered")
    return (F.when(is_call & F.col("other_party_international"), "voice_international")
            .when(is_call, "voice").when(sms, "sms").when(t == "data", "data"))


def fact_usage(events: DataFrame, subscribers: DataFrame, tariffs: DataFrame, services: DataFrame,
               partition: str | None = None) -> DataFrame:
    """One row per clean CDR: keys to every dimension, measures and the list-price charge.

    ``subscribers`` is dim_subscriber: the plan in force on the record's day (SCD2 range join).
    ``date`` is the record's day, or the value of the column ``partition`` of ``events`` when given
    (the day the record was landed for, which names its partition)."""
    e = events.withColumn("date", F.to_date("start_time"))
    sub = subscribers.select("subscriber_key", "plan", "valid_from", "valid_to")
    joined = (e.join(sub, (e["served_msisdn"] == sub["subscriber_key"])
                     & (e["date"] >= sub["valid_from"]) & (e["date"] <= sub["valid_to"]), "left")
              .join(F.broadcast(tariffs), "plan", "left")
              .join(F.broadcast(services.select("service", "service_key")),
                    F.col("record_type") == F.col("service"), "left"))
    category = _billing_category(joined)
    bytes_total = F.coalesce(F.col("bytes_uplink"), F.lit(0)) + F.coalesce(F.col("bytes_downlink"), F.lit(0))
    units = (F.when(category.isin("voice", "voice_international"), F.ceil(F.col("duration_s") / 60))
             .when(category == "sms", F.lit(1))
             .when(category == "data", F.ceil(bytes_total / MB))
             .otherwise(F.lit(0))).cast("double")
    price = (F.when(category == "voice", F.col("voice_per_min_dzd"))
             .when(category == "voice_international", F.col("voice_per_min_international_dzd"))
             .when(category == "sms", F.col("sms_each_dzd"))
             .when((category == "data") & ~F.col("unlimited_data"), F.col("data_per_mb_dzd"))
             .otherwise(F.lit(0.0)))
    return joined.select(
        "record_id",
        F.date_format("date", "yyyyMMdd").cast("int").alias("date_key"),
        (F.hour("start_time") * 60 + F.minute("start_time")).alias("time_key"),
        "start_time", "service_key", F.col("record_type").alias("service"),
        F.col("served_msisdn").alias("subscriber_key"), F.col("served_imsi").alias("imsi_key"),
        F.col("served_imei").alias("imei_key"), F.col("device_tac").alias("tac"),
        "cell_id", "access_technology", "roaming", "visited_plmn",
        F.col("other_party").alias("other_party_key"), "other_party_international", "direction",
        "call_result", "sms_status", "ims_service", "sip_status",
        F.col("plan"), category.alias("billing_category"),
        F.col("duration_s"), F.col("bytes_uplink"), F.col("bytes_downlink"), bytes_total.alias("bytes_total"),
        units.alias("units"), F.round(units * F.coalesce(price, F.lit(0.0)), 2).alias("rated_charge_dzd"),
        F.col(partition or "date").alias("date"),
    )


def fact_billing_daily(usage: DataFrame) -> DataFrame:
    """Daily usage per subscriber, service and billing category, rated at list price."""
    return (usage.groupBy("date", "date_key", "subscriber_key", "plan", "service", "billing_category")
            .agg(F.count(F.lit(1)).alias("events"), F.sum("duration_s").alias("duration_s"),
                 F.sum("bytes_total").alias("bytes_total"), F.sum("units").alias("units"),
                 F.round(F.sum("rated_charge_dzd"), 2).alias("rated_charge_dzd")))


def invoice_lines(billing_daily: DataFrame, tariffs: DataFrame, month_key: str) -> DataFrame:
    """Monthly invoice lines per subscriber (fee, one line per category after bundles, VAT, total).

    ``billing_daily`` holds the month's days (month to date when the month is not over)."""
    used = (billing_daily.filter(F.col("billing_category").isNotNull())
            .groupBy("subscriber_key", "plan", "billing_category").agg(F.sum("units").alias("quantity")))
    t = F.broadcast(tariffs)
    usage_lines = None
    for category, (included_col, price_col) in CATEGORIES.items():
        included = F.col(included_col) if included_col else F.lit(0.0)
        unlimited = F.col("unlimited_data") if category == "data" else F.lit(False)
        lines = (used.filter(F.col("billing_category") == category).join(t, "plan")
                 .select("subscriber_key", "plan", F.lit(category).alias("line"), "quantity",
                         included.alias("included"),
                         F.when(unlimited, 0.0).otherwise(F.greatest(F.col("quantity") - included, F.lit(0.0)))
                         .alias("billable"),
                         F.col(price_col).alias("unit_price_dzd")))
        usage_lines = lines if usage_lines is None else usage_lines.unionByName(lines)
    usage_lines = usage_lines.withColumn("amount_dzd", F.round(F.col("billable") * F.col("unit_price_dzd"), 2))
    subscribers = billing_daily.select("subscriber_key", "plan").distinct()
    fees = subscribers.join(t, "plan").select(
        "subscriber_key", "plan", F.lit("monthly_fee").alias("line"), F.lit(1.0).alias("quantity"),
        F.lit(0.0).alias("included"), F.lit(1.0).alias("billable"), F.col("monthly_fee_dzd").alias("unit_price_dzd"),
        F.col("monthly_fee_dzd").alias("amount_dzd"))
    charged = fees.unionByName(usage_lines)
    subtotal = charged.groupBy("subscriber_key", "plan").agg(F.round(F.sum("amount_dzd"), 2).alias("subtotal"))
    vat = subtotal.join(t.select("plan", "vat_rate"), "plan").select(
        "subscriber_key", "plan", F.lit("vat").alias("line"), F.col("subtotal").alias("quantity"),
        F.lit(0.0).alias("included"), F.col("subtotal").alias("billable"), F.col("vat_rate").alias("unit_price_dzd"),
        F.round(F.col("subtotal") * F.col("vat_rate"), 2).alias("amount_dzd"))
    total = subtotal.join(vat.select("subscriber_key", "plan", F.col("amount_dzd").alias("vat")),
                          ["subscriber_key", "plan"]).select(
        "subscriber_key", "plan", F.lit("total").alias("line"), F.lit(1.0).alias("quantity"),
        F.lit(0.0).alias("included"), F.lit(1.0).alias("billable"),
        F.round(F.col("subtotal") + F.col("vat"), 2).alias("unit_price_dzd"),
        F.round(F.col("subtotal") + F.col("vat"), 2).alias("amount_dzd"))
    return charged.unionByName(vat).unionByName(total).withColumn("month_key", F.lit(month_key))
