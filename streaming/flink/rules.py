"""The detection rules and live KPIs as pure functions of an events table (Flink SQL).

``events`` has one row per valid CDR with the columns of ``streaming.flink.schema.EVENT_ROW``
(identifiers as they arrived: the job pseudonymises only what it publishes, in ``alerts``) and
an event-time column ``event_time`` (a rowtime attribute in the streaming job, a plain
TIMESTAMP(3) in batch tests). Each rule is a tumbling event-time window (window TVF: works in streaming and
batch, and allows COUNT(DISTINCT)) per entity with a threshold; its output rows are alerts.
The thresholds and why they are what they are: docs/streaming.md.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from pyflink.table import Table, TableEnvironment


@dataclass(frozen=True)
class Thresholds:
    sim_box_mo_calls: int = 30  # MO calls per hour from one line ...
    sim_box_distinct_called: int = 25  # ... to this many distinct numbers ...
    sim_box_max_mt_calls: int = 2  # ... while it receives at most this many
    outage_window_min: int = 15
    outage_min_attempts: int = 8
    outage_failed_share: float = 0.6  # failed + dropped share of voice attempts on the cell
    surge_records_per_hour: int = 250  # voice + sms + data records on one radio cell
    spike_window_min: int = 120
    spike_session_bytes: int = 2_000_000_000  # a session this large is a "big" one ...
    spike_big_sessions: int = 3  # ... and this many in the window is a spike
    cloning_distinct_lines: int = 2  # SIMs seen with one IMEI in an hour
    travel_km: float = 300.0  # spread of a line's cells within one hour, and more than ...
    travel_reach_factor: float = 1.2  # ... this times the farthest its cells' neighbours are
    wangiri_distinct_victims: int = 15  # unanswered MT calls from one foreign number per hour


FINDING_COLUMNS = ("scenario", "entity_type", "entity_id", "window_start", "window_end", "severity", "metrics",
                   "detected_at")
ALERT_COLUMNS = ("alert_id", *FINDING_COLUMNS)
_views = itertools.count()


def _register(t_env: TableEnvironment, events: Table) -> str:
    name = f"cdr_events_{next(_views)}"
    t_env.create_temporary_view(name, events)
    return name


def _rule(scenario: str, entity_type: str, entity: str, severity: str, minutes: int, aggregates: str,
          where: str, having: str, metrics: list[str], events: str) -> str:
    """One rule as SQL: window, aggregate, threshold, one finding row (FINDING_COLUMNS)."""
    metrics_json = "JSON_OBJECT(" + ", ".join(f"KEY '{m}' VALUE `{m}`" for m in metrics) + ")"
    return f"""
SELECT CAST('{scenario}' AS STRING) AS scenario, CAST('{entity_type}' AS STRING) AS entity_type,
       entity AS entity_id, window_start, window_end, CAST('{severity}' AS STRING) AS severity,
       {metrics_json} AS metrics, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)) AS detected_at
FROM (
  SELECT {entity} AS entity, window_start, window_end, {aggregates}
  FROM TABLE(TUMBLE(TABLE {events}, DESCRIPTOR(event_time), INTERVAL '{minutes}' MINUTE(4)))
  WHERE {where}
  GROUP BY {entity}, window_start, window_end
) WHERE {having}"""


def rule_queries(events: str, th: Thresholds) -> dict[str, str]:
    haversine = ("CAST(ROUND(2 * 6371.0 * ASIN(SQRT(POWER(SIN(RADIANS(MAX(latitude) - MIN(latitude)) / 2), 2)"
                 " + COS(RADIANS(MIN(latitude))) * COS(RADIANS(MAX(latitude)))"
                 " * POWER(SIN(RADIANS(MAX(longitude) - MIN(longitude)) / 2), 2))), 1) AS DOUBLE)")
    return {
        "sim_box": _rule(
            "sim_box", "msisdn", "msisdn", "high", 60,
            "SUM(CASE WHEN direction = 'MO' THEN 1 ELSE 0 END) AS mo_calls, "
            "SUM(CASE WHEN direction = 'MT' THEN 1 ELSE 0 END) AS mt_calls, "
            "COUNT(DISTINCT CASE WHEN direction = 'MO' THEN other_party END) AS distinct_called",
            "record_type = 'voice'",
            f"mo_calls >= {th.sim_box_mo_calls} AND distinct_called >= {th.sim_box_distinct_called}"
            f" AND mt_calls <= {th.sim_box_max_mt_calls}",
            ["mo_calls", "mt_calls", "distinct_called"], events),
        "cell_outage": _rule(
            "cell_outage", "cell", "cell_id", "critical", th.outage_window_min,
            "COUNT(*) AS attempts, SUM(CASE WHEN failed THEN 1 ELSE 0 END) AS failed_calls",
            "record_type = 'voice' AND mobile",
            f"attempts >= {th.outage_min_attempts} AND failed_calls >= attempts * {th.outage_failed_share}",
            ["attempts", "failed_calls"], events),
        "traffic_surge": _rule(
            "traffic_surge", "cell", "cell_id", "medium", 60,
            "COUNT(*) AS records",
            "mobile AND record_type IN ('voice', 'sms', 'data')",
            f"records >= {th.surge_records_per_hour}", ["records"], events),
        "data_spike": _rule(
            "data_spike", "msisdn", "msisdn", "medium", th.spike_window_min,
            f"SUM(CASE WHEN total_bytes >= {th.spike_session_bytes} THEN 1 ELSE 0 END) AS big_sessions, "
            "SUM(total_bytes) AS total_bytes_sum",
            "record_type = 'data' AND mobile",
            f"big_sessions >= {th.spike_big_sessions}", ["big_sessions", "total_bytes_sum"], events),
        "imei_cloning": _rule(
            "imei_cloning", "imei", "imei", "high", 60,
            "COUNT(DISTINCT msisdn) AS lines",
            "imei IS NOT NULL",
            f"lines >= {th.cloning_distinct_lines}", ["lines"], events),
        "impossible_travel": _rule(
            "impossible_travel", "msisdn", "msisdn", "medium", 60,
            f"{haversine} AS spread_km, CAST(ROUND(MAX(reach_km), 1) AS DOUBLE) AS reach_km",
            "latitude IS NOT NULL",
            f"spread_km >= {th.travel_km} AND spread_km > reach_km * {th.travel_reach_factor}",
            ["spread_km", "reach_km"], events),
        "wangiri": _rule(
            "wangiri", "msisdn", "other_party", "high", 60,
            "COUNT(DISTINCT msisdn) AS victims",
            "record_type = 'voice' AND direction = 'MT' AND other_foreign AND NOT answered",
            f"victims >= {th.wangiri_distinct_victims}", ["victims"], events),
    }


def detect(t_env: TableEnvironment, events: Table, th: Thresholds = Thresholds()) -> Table:
    """Findings of every rule (columns FINDING_COLUMNS, entities as in ``events``), one UNION ALL."""
    name = _register(t_env, events)
    return t_env.sql_query("\nUNION ALL\n".join(rule_queries(name, th).values()))


def alerts(t_env: TableEnvironment, findings: Table, published_entity: str = "entity_id") -> Table:
    """Alert rows (ALERT_COLUMNS) of the findings. ``published_entity`` is the SQL of the entity id
    that leaves the job (the job pseudonymises identifiers there); alert_id = SHA-256(rule|published
    entity|window start), so replaying the same data upserts the same rows instead of adding new ones."""
    name = _register(t_env, findings)
    columns = ", ".join(published_entity + " AS entity_id" if c == "entity_id" else c for c in FINDING_COLUMNS)
    return t_env.sql_query(f"""
SELECT SHA256(CONCAT_WS('|', scenario, entity_id, CAST(window_start AS STRING))) AS alert_id, {", ".join(FINDING_COLUMNS)}
FROM (SELECT {columns} FROM {name})""")


def kpis_per_cell(t_env: TableEnvironment, events: Table) -> Table:
    """Per minute and cell: voice attempts, answered, failed or dropped, SMS, data bytes."""
    name = _register(t_env, events)
    return t_env.sql_query(f"""
SELECT cell_id, window_start AS minute_start,
       SUM(CASE WHEN record_type = 'voice' THEN 1 ELSE 0 END) AS call_attempts,
       SUM(CASE WHEN answered THEN 1 ELSE 0 END) AS answered,
       SUM(CASE WHEN failed THEN 1 ELSE 0 END) AS dropped_or_failed,
       SUM(CASE WHEN record_type = 'sms' THEN 1 ELSE 0 END) AS sms,
       SUM(COALESCE(total_bytes, 0)) AS data_bytes
FROM TABLE(TUMBLE(TABLE {name}, DESCRIPTOR(event_time), INTERVAL '1' MINUTES))
GROUP BY cell_id, window_start, window_end""")


def kpis_per_service(t_env: TableEnvironment, events: Table) -> Table:
    """Per minute and record type: records, answered, failed or dropped, data bytes."""
    name = _register(t_env, events)
    return t_env.sql_query(f"""
SELECT record_type AS service, window_start AS minute_start, COUNT(*) AS records,
       SUM(CASE WHEN answered THEN 1 ELSE 0 END) AS answered,
       SUM(CASE WHEN failed THEN 1 ELSE 0 END) AS dropped_or_failed,
       SUM(COALESCE(total_bytes, 0)) AS data_bytes
FROM TABLE(TUMBLE(TABLE {name}, DESCRIPTOR(event_time), INTERVAL '1' MINUTES))
GROUP BY record_type, window_start, window_end""")
