"""Batch anomaly detectors, one per generator scenario, on fact_usage rows (pseudonymised).

Each detector flags hourly (or per-event) evidence and merges an entity's flagged evidence of a
day into one anomaly row: (scenario, entity_type, entity_id, window_start, window_end, score,
method). Every threshold and window is read from ``cdr.detection`` when a detector runs (the
stream rules read the same definitions; each detector also takes its scenario's definition as
an argument); the robust methods compare a cell's hour with the same hour's baseline (median and
MAD over cells, or over the cell's own hours).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdr import detection
from cdr.contract import SCENARIO_ENTITY
from cdr.detection import (CellOutage, DataSpike, Definitions, ImeiCloning, ImpossibleTravel, SimBox, TrafficSurge,
                           Wangiri)
from cdr.geo import EARTH_RADIUS_KM

COLUMNS = ("scenario", "entity_type", "entity_id", "window_start", "window_end", "score", "method", "date")

RADIO = ("2G", "3G", "4G", "5G")


def haversine_km(lat1: Column, lon1: Column, lat2: Column, lon2: Column) -> Column:
    """Great-circle distance, the same formula as cdr.geo.haversine_km."""
    p1, p2 = F.radians(lat1), F.radians(lat2)
    a = (F.sin((p2 - p1) / 2) ** 2
         + F.cos(p1) * F.cos(p2) * F.sin((F.radians(lon2) - F.radians(lon1)) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * F.asin(F.sqrt(a))


def _merge(flagged: DataFrame, scenario: str, method: str, entity: str, start: str, end: str) -> DataFrame:
    """One anomaly per entity and day covering its flagged evidence; score = strongest evidence."""
    return (flagged.withColumn("date", F.to_date(start))
            .groupBy(entity, "date")
            .agg(F.min(start).alias("window_start"), F.max(end).alias("window_end"), F.max("score").alias("score"))
            .select(F.lit(scenario).alias("scenario"), F.lit(SCENARIO_ENTITY[scenario]).alias("entity_type"),
                    F.col(entity).alias("entity_id"), "window_start", "window_end",
                    F.round("score", 3).alias("score"), F.lit(method).alias("method"), "date"))


def _plus_hour(col: str) -> Column:
    """End of a feature_cell_hourly hour (the robust detectors' evidence is that table's hours)."""
    return F.col(col) + F.expr("INTERVAL 1 HOUR")


def _windowed(df: DataFrame, minutes: int) -> DataFrame:
    """Tumbling event-time windows of ``minutes``, aligned as the stream rules' (from the epoch, UTC)."""
    w = F.window("start_time", f"{minutes} minutes")
    return df.withColumn("window_start", w["start"]).withColumn("window_end", w["end"])


def sim_box(usage: DataFrame, d: SimBox | None = None) -> DataFrame:
    d = d or detection.DEFINITIONS.sim_box
    voice = usage.filter(F.col("service") == "voice")
    mo = F.col("direction") == "MO"
    windows = _windowed(voice.filter(mo), d.window_min).groupBy("subscriber_key", "window_start", "window_end").agg(
        F.count(F.lit(1)).alias("calls"), F.countDistinct("other_party_key").alias("callees"))
    daily = voice.groupBy("subscriber_key", F.to_date("start_time").alias("day")).agg(
        F.count(F.when(mo, 1)).alias("out"), F.count(F.when(~mo, 1)).alias("in"))
    flagged = (windows.filter((F.col("calls") >= d.min_mo_calls) & (F.col("callees") >= d.min_distinct_callees))
               .withColumn("day", F.to_date("window_start")).join(daily, ["subscriber_key", "day"])
               .filter(F.col("in") <= d.batch_max_in_out_ratio * F.col("out"))
               .withColumn("score", F.col("calls").cast("double")))
    return _merge(flagged, "sim_box", "rule: outgoing calls/hour to distinct numbers, no incoming",
                  "subscriber_key", "window_start", "window_end")


def wangiri(usage: DataFrame, d: Wangiri | None = None) -> DataFrame:
    d = d or detection.DEFINITIONS.wangiri
    rings = _windowed(usage.filter((F.col("service") == "voice") & (F.col("direction") == "MT")
                                   & F.col("other_party_international") & (F.col("call_result") == "no_answer")),
                      d.window_min)
    windows = rings.groupBy("other_party_key", "window_start", "window_end").agg(
        F.countDistinct("subscriber_key").alias("victims"))
    flagged = (windows.filter(F.col("victims") >= d.min_victims)
               .withColumn("score", F.col("victims").cast("double")))
    return _merge(flagged, "wangiri", "rule: one foreign number rings many subscribers, unanswered",
                  "other_party_key", "window_start", "window_end")


def data_spike(usage: DataFrame, d: DataSpike | None = None) -> DataFrame:
    d = d or detection.DEFINITIONS.data_spike
    sessions = usage.filter((F.col("service") == "data") & F.col("access_technology").isin(*RADIO)
                            & (F.col("bytes_total") >= d.min_session_bytes))
    big = sessions.withColumn("day", F.to_date("start_time"))
    per_day = big.groupBy("subscriber_key", "day").agg(F.sum("bytes_total").alias("day_bytes"),
                                                       F.count(F.lit(1)).alias("sessions"))
    flagged = (big.join(per_day, ["subscriber_key", "day"])
               .filter((F.col("day_bytes") >= d.batch_min_day_bytes) & (F.col("sessions") >= d.batch_min_sessions))
               .withColumn("end", F.col("start_time") + F.make_interval(secs=F.col("duration_s")))
               .withColumn("score", F.col("day_bytes") / 1e9))
    return _merge(flagged, "data_spike", "rule: subscriber's daily volume in huge sessions (GB)",
                  "subscriber_key", "start_time", "end")


def _located(usage: DataFrame, cells: DataFrame) -> DataFrame:
    """Events on a known cell of the home network, with its coordinates (roaming has none).
    ``cells`` is dim_cell (with each cell's distance to the nearest other site of its operator)."""
    return usage.join(F.broadcast(cells.select("cell_id", "latitude", "longitude", "nearest_site_km")), "cell_id")


def imei_cloning(usage: DataFrame, cells: DataFrame, d: ImeiCloning | None = None) -> DataFrame:
    d = d or detection.DEFINITIONS.imei_cloning
    ev = _located(usage.filter(F.col("imei_key").isNotNull() & F.col("imsi_key").isNotNull()), cells) \
        .withColumn("day", F.to_date("start_time"))
    per_sim = ev.groupBy("imei_key", "day", "imsi_key").agg(
        F.avg("latitude").alias("lat"), F.avg("longitude").alias("lon"), F.count(F.lit(1)).alias("n"),
        F.min("start_time").alias("first"), F.max("start_time").alias("last"))
    per_sim = (per_sim.withColumn("sims", F.count(F.lit(1)).over(Window.partitionBy("imei_key", "day")))
               .filter(F.col("sims") >= d.min_sims))
    a, b = per_sim.alias("a"), per_sim.alias("b")
    pairs = a.join(b, (F.col("a.imei_key") == F.col("b.imei_key")) & (F.col("a.day") == F.col("b.day"))
                   & (F.col("a.imsi_key") < F.col("b.imsi_key")))
    distance = haversine_km(F.col("a.lat"), F.col("a.lon"), F.col("b.lat"), F.col("b.lon"))
    flagged = pairs.filter(distance > d.batch_min_distance_km).select(
        F.col("a.imei_key").alias("imei_key"),
        F.greatest("a.first", "b.first").alias("start"), F.least("a.last", "b.last").alias("end"),
        distance.alias("score"))
    flagged = flagged.withColumn("start", F.least("start", "end")).withColumn("end", F.greatest("start", "end"))
    return _merge(flagged, "imei_cloning", "rule: one IMEI, several IMSIs far apart the same day (km)",
                  "imei_key", "start", "end")


def impossible_travel(usage: DataFrame, cells: DataFrame, d: ImpossibleTravel | None = None) -> DataFrame:
    d = d or detection.DEFINITIONS.impossible_travel
    ev = _located(usage, cells)
    order = Window.partitionBy("subscriber_key").orderBy("start_time", "record_id")
    steps = (ev.select("subscriber_key", "record_id", "start_time", "latitude", "longitude", "nearest_site_km")
             .withColumn("prev_time", F.lag("start_time").over(order))
             .withColumn("prev_lat", F.lag("latitude").over(order))
             .withColumn("prev_lon", F.lag("longitude").over(order))
             .withColumn("prev_nearest_km", F.lag("nearest_site_km").over(order)))
    neighbourhood = d.batch_neighbour_factor * F.greatest("nearest_site_km", "prev_nearest_km")
    minutes = (F.col("start_time").cast("double") - F.col("prev_time").cast("double")) / 60
    km = haversine_km(F.col("prev_lat"), F.col("prev_lon"), F.col("latitude"), F.col("longitude"))
    flagged = (steps.withColumn("km", km).withColumn("minutes", minutes)
               .filter((F.col("km") >= d.min_distance_km) & (F.col("km") > neighbourhood)
                       & (F.col("minutes") <= d.window_min))
               .withColumn("score", F.col("km") / F.greatest(F.col("minutes") / 60, F.lit(1 / 60))))
    hops = flagged.groupBy("subscriber_key", F.to_date("start_time").alias("day")).agg(F.count(F.lit(1)).alias("hops"))
    flagged = (flagged.withColumn("day", F.to_date("start_time")).join(hops, ["subscriber_key", "day"])
               .filter(F.col("hops") >= d.batch_min_hops))
    return _merge(flagged, "impossible_travel", "rule: consecutive events too far apart in too little time (km/h)",
                  "subscriber_key", "prev_time", "start_time")


def _robust_z(value: Column, median: Column, mad: Column, floor: float) -> Column:
    return (value - median) / F.greatest(1.4826 * mad, F.lit(floor))


def binomial_g(k: Column, n: Column, p: Column) -> Column:
    """Likelihood-ratio statistic of k successes in n trials against rate p, for an excess (0 when
    k <= n p): 2 [k ln(k / np) + (n - k) ln((n - k) / (n (1 - p)))]."""
    def term(observed: Column, expected: Column) -> Column:
        return F.when(observed > 0, observed * F.log(observed / expected)).otherwise(F.lit(0.0))

    g = 2 * (term(k, n * p) + term(n - k, n * (1 - p)))
    return F.when(k > n * p, g).otherwise(F.lit(0.0))


def cell_outage(cell_hours: DataFrame, d: CellOutage | None = None) -> DataFrame:
    """Failed+dropped share of a cell's calls against the same hour's share over all cells (robust
    z), confirmed by the counts: the failures are improbable at the other cells' rate (G test)."""
    d = d or detection.DEFINITIONS.cell_outage
    h = cell_hours.filter(F.col("call_attempts") > 0).withColumn(
        "failures", F.col("calls_failed") + F.col("calls_dropped")).withColumn(
        "ratio", F.col("failures") / F.col("call_attempts"))
    baseline = h.groupBy("hour").agg(F.percentile_approx("ratio", 0.5).alias("median"),
                                     F.sum("failures").alias("hour_failures"),
                                     F.sum("call_attempts").alias("hour_attempts"))
    h = h.join(baseline, "hour").withColumn("dev", F.abs(F.col("ratio") - F.col("median")))
    spread = h.groupBy("hour").agg(F.percentile_approx("dev", 0.5).alias("mad"))
    others_rate = F.greatest(
        (F.col("hour_failures") - F.col("failures")) / F.greatest(F.col("hour_attempts") - F.col("call_attempts"), F.lit(1)),
        F.lit(d.batch_rate_floor))
    scored = (h.join(spread, "hour")
              .withColumn("score", _robust_z(F.col("ratio"), F.col("median"), F.col("mad"), d.batch_mad_floor))
              .withColumn("g", binomial_g(F.col("failures"), F.col("call_attempts"), others_rate)))
    flagged = (scored.filter((F.col("failures") >= d.batch_min_failures) & (F.col("ratio") >= d.batch_min_failed_share)
                             & (F.col("score") >= d.batch_min_z) & (F.col("g") >= d.batch_min_g))
               .withColumn("end", _plus_hour("hour")))
    return _merge(flagged, "cell_outage", "robust z of failed+dropped share vs the same hour over all cells",
                  "cell_id", "hour", "end")


def traffic_surge(cell_hours: DataFrame, d: TrafficSurge | None = None) -> DataFrame:
    """A cell's hourly events against its own baseline (median and MAD of its hours)."""
    d = d or detection.DEFINITIONS.traffic_surge
    baseline = cell_hours.groupBy("cell_id").agg(F.percentile_approx("events", 0.5).alias("median"))
    h = cell_hours.join(baseline, "cell_id").withColumn("dev", F.abs(F.col("events") - F.col("median")))
    spread = h.groupBy("cell_id").agg(F.percentile_approx("dev", 0.5).alias("mad"))
    scored = h.join(spread, "cell_id").withColumn(
        "score", _robust_z(F.col("events"), F.col("median"), F.col("mad"), d.batch_mad_floor))
    flagged = (scored.filter((F.col("events") - F.col("median") >= d.batch_min_extra_events)
                             & (F.col("score") >= d.batch_min_z))
               .withColumn("end", _plus_hour("hour")))
    return _merge(flagged, "traffic_surge", "robust z of hourly events vs the cell's own hours",
                  "cell_id", "hour", "end")


def detect_all(usage: DataFrame, cell_hours: DataFrame, cells: DataFrame, defs: Definitions | None = None) -> DataFrame:
    """Every detector's anomalies in one frame (the cdr_dw.anomalies rows of the days given)."""
    defs = defs or detection.DEFINITIONS
    frames = [sim_box(usage, defs.sim_box), wangiri(usage, defs.wangiri), data_spike(usage, defs.data_spike),
              imei_cloning(usage, cells, defs.imei_cloning), impossible_travel(usage, cells, defs.impossible_travel),
              cell_outage(cell_hours, defs.cell_outage), traffic_surge(cell_hours, defs.traffic_surge)]
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out.select(*COLUMNS)
