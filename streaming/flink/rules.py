"""The detection rules and live KPIs as pure functions of an events table (Flink SQL).

``events`` has one row per valid CDR with the columns of ``streaming.flink.schema.EVENT_ROW``
(identifiers as they arrived: the job pseudonymises only what it publishes, in ``alerts``) and
an event-time column ``event_time`` (a rowtime attribute in the streaming job, a plain
TIMESTAMP(3) in batch tests). Each rule is a tumbling event-time window (window TVF: works in streaming and
batch, and allows COUNT(DISTINCT)) per entity with a threshold; its output rows are alerts.
Every threshold and window comes from ``cdr.detection`` (the batch detectors read the same
definitions; why each value is what it is: docs/data-contract.md, "Detection definitions").
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from cdr import detection
from cdr.detection import Definitions
from cdr.geo import EARTH_RADIUS_KM

if TYPE_CHECKING:  # the SQL is built without PyFlink (tests/unit/test_scenario_definitions.py reads it)
    from pyflink.table import Table, TableEnvironment


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


def rule_queries(events: str, defs: Definitions | None = None) -> dict[str, str]:
    """The SQL of each rule (scenario -> query over the view ``events``), with ``defs`` (default:
    ``cdr.detection.DEFINITIONS``, read now)."""
    d = defs or detection.DEFINITIONS
    box, outage, surge, spike = d.sim_box, d.cell_outage, d.traffic_surge, d.data_spike
    cloning, travel, wangiri = d.imei_cloning, d.impossible_travel, d.wangiri
    haversine = (f"CAST(ROUND(2 * {EARTH_RADIUS_KM} * ASIN(SQRT("
                 "POWER(SIN(RADIANS(MAX(latitude) - MIN(latitude)) / 2), 2)"
                 " + COS(RADIANS(MIN(latitude))) * COS(RADIANS(MAX(latitude)))"
                 " * POWER(SIN(RADIANS(MAX(longitude) - MIN(longitude)) / 2), 2))), 1) AS DOUBLE)")
    return {
        "sim_box": _rule(
            "sim_box", "msisdn", "msisdn", "high", box.window_min,
            "SUM(CASE WHEN direction = 'MO' THEN 1 ELSE 0 END) AS mo_calls, "
            "SUM(CASE WHEN direction = 'MT' THEN 1 ELSE 0 END) AS mt_calls, "
            "COUNT(DISTINCT CASE WHEN direction = 'MO' THEN other_party END) AS distinct_called",
            "record_type = 'voice'",
            f"mo_calls >= {box.min_mo_calls} AND distinct_called >= {box.min_distinct_callees}"
            f" AND mt_calls <= {box.stream_max_mt_calls}",
            ["mo_calls", "mt_calls", "distinct_called"], events),
        "cell_outage": _rule(
            "cell_outage", "cell", "cell_id", "critical", outage.stream_window_min,
            "COUNT(*) AS attempts, SUM(CASE WHEN failed THEN 1 ELSE 0 END) AS failed_calls",
            "record_type = 'voice' AND mobile",
            f"attempts >= {outage.stream_min_attempts}"
            f" AND failed_calls >= attempts * {outage.stream_min_failed_share}",
            ["attempts", "failed_calls"], events),
        "traffic_surge": _rule(
            "traffic_surge", "cell", "cell_id", "medium", surge.stream_window_min,
            "COUNT(*) AS records",
            "mobile AND record_type IN ('voice', 'sms', 'data')",
            f"records >= {surge.stream_min_records}", ["records"], events),
        "data_spike": _rule(
            "data_spike", "msisdn", "msisdn", "medium", spike.stream_window_min,
            f"SUM(CASE WHEN total_bytes >= {spike.min_session_bytes} THEN 1 ELSE 0 END) AS big_sessions, "
            "SUM(total_bytes) AS total_bytes_sum",
            "record_type = 'data' AND mobile",
            f"big_sessions >= {spike.stream_min_big_sessions}", ["big_sessions", "total_bytes_sum"], events),
        "imei_cloning": _rule(
            "imei_cloning", "imei", "imei", "high", cloning.stream_window_min,
            "COUNT(DISTINCT msisdn) AS lines",
            "imei IS NOT NULL",
            f"lines >= {cloning.min_sims}", ["lines"], events),
        "impossible_travel": _rule(
            "impossible_travel", "msisdn", "msisdn", "medium", travel.window_min,
            f"{haversine} AS spread_km, CAST(ROUND(MAX(reach_km), 1) AS DOUBLE) AS reach_km",
            "latitude IS NOT NULL",
            f"spread_km >= {travel.min_distance_km} AND spread_km > reach_km * {travel.stream_reach_factor}",
            ["spread_km", "reach_km"], events),
        "wangiri": _rule(
            "wangiri", "msisdn", "other_party", "high", wangiri.window_min,
            "COUNT(DISTINCT msisdn) AS victims",
            "record_type = 'voice' AND direction = 'MT' AND other_foreign AND NOT answered",
            f"victims >= {wangiri.min_victims}", ["victims"], events),
    }


def detect(t_env: TableEnvironment, events: Table, defs: Definitions | None = None) -> Table:
    """Findings of every rule (columns FINDING_COLUMNS, entities as in ``events``), one UNION ALL;
    ``defs`` as in ``rule_queries``."""
    name = _register(t_env, events)
    return t_env.sql_query("\nUNION ALL\n".join(rule_queries(name, defs).values()))


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
