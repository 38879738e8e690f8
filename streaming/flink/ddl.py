"""Flink SQL DDL of the detection job's Kafka source and its Kafka and JDBC sinks."""

from __future__ import annotations

from cdr.settings import Settings
from streaming.topics import cdr_topics

WATERMARK_DELAY_S = 10  # the producer sends in event-time order; this covers partition interleaving
# A CDR is written after its call starts, so its start time is behind the moment it reaches Kafka.
# One dated further ahead than clock skew explains (the generator's timestamp_future defect: 20
# years) does not move the event clock: Flink's source keeps the last record's watermark of each
# partition, and one such record last on every partition would make every later record late.
WATERMARK_MAX_LEAD_S = 60


def ahead_of_clock_sql(event_time: str = "event_time", kafka_time: str = "kafka_time") -> str:
    """TRUE for a record the watermark ignores: dated more than WATERMARK_MAX_LEAD_S ahead of the
    moment it reached Kafka (the WATERMARK clause below returns NULL for it)."""
    return f"{event_time} > CAST({kafka_time} AS TIMESTAMP(3)) + INTERVAL '{WATERMARK_MAX_LEAD_S}' SECOND"


def quote(value: str) -> str:
    """A value inside a single-quoted SQL string literal."""
    return value.replace("'", "''")


def timestamp_from_json(payload: str, field: str, precision: int) -> str:
    """An ISO-8601 UTC string (``2025-12-28T10:00:00.123456Z``) as TIMESTAMP(precision); NULL if unreadable."""
    return f"TRY_CAST(REPLACE(REPLACE(JSON_VALUE({payload}, '$.{field}'), 'T', ' '), 'Z', '') AS TIMESTAMP({precision}))"


def _kafka_options(settings: Settings, topics: list[str], group_id: str) -> str:
    """Reads from the group's committed offsets, or the earliest for a new group."""
    return f"""'connector' = 'kafka',
  'topic' = '{quote(";".join(topics))}',
  'properties.bootstrap.servers' = '{settings.kafka.bootstrap}',
  'properties.group.id' = '{quote(group_id)}',
  'properties.auto.offset.reset' = 'earliest',
  'scan.startup.mode' = 'group-offsets'"""


def raw_kafka_table(settings: Settings, name: str, topics: list[str], group_id: str, extra: str = "") -> str:
    """Topics as raw strings (value and key) with their Kafka metadata: a job must see malformed
    messages too. ``extra`` adds column lines (computed columns, a watermark). Reads from the
    group's committed offsets, or the earliest for a new group."""
    return f"""
CREATE TABLE {name} (
  payload STRING,
  message_key STRING,
  topic STRING METADATA VIRTUAL,
  `partition` INT METADATA VIRTUAL,
  `offset` BIGINT METADATA VIRTUAL,
  kafka_timestamp TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL{extra}
) WITH (
  {_kafka_options(settings, topics, group_id)},
  'key.format' = 'raw',
  'key.fields' = 'message_key',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'
)"""


def json_kafka_table(settings: Settings, name: str, topics: list[str], group_id: str) -> str:
    """Topics read by Flink's JSON format, every contract field as text (the detection job types
    and validates them in SQL: streaming.flink.validation); a message that is not a JSON object
    is skipped here and dead-lettered from the raw twin table. ``event_time`` is the start time;
    its expression is deterministic, so the planner pushes the watermark into the Kafka source,
    which tracks it per partition and takes the minimum. (Generated after the source instead, one
    partition's fetch running hours of event time ahead of the others makes their records late.)"""
    from streaming.flink.validation import cdr_fields, typed
    from cdr.contract import FieldType

    columns = ",\n  ".join(f"`{f}` STRING" for f in cdr_fields())
    start = typed("start_time", FieldType.TIMESTAMP).replace("TIMESTAMP(6)", "TIMESTAMP(3)")
    return f"""
CREATE TABLE {name} (
  {columns},
  topic STRING METADATA VIRTUAL,
  `partition` INT METADATA VIRTUAL,
  `offset` BIGINT METADATA VIRTUAL,
  kafka_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  proc_time AS PROCTIME(),
  event_time AS {start},
  WATERMARK FOR event_time AS CASE
    WHEN NOT ({ahead_of_clock_sql()}) THEN event_time - INTERVAL '{WATERMARK_DELAY_S}' SECOND END
) WITH (
  {_kafka_options(settings, topics, group_id)},
  'value.format' = 'json',
  'value.json.ignore-parse-errors' = 'true',
  'value.json.fail-on-missing-field' = 'false'
)"""


def cell_reference_table(settings: Settings) -> str:
    """The cell reference in PostgreSQL (``cdr stream start`` loads it) as a lookup table, cached
    whole in the job after first use: a few thousand rows, looked up once per message."""
    return f"""
CREATE TABLE cell_reference (
  cell_id STRING, latitude DOUBLE, longitude DOUBLE, reach_km DOUBLE,
  PRIMARY KEY (cell_id) NOT ENFORCED
) WITH (
  {_jdbc_connection(settings, 'cell_reference')},
  'lookup.cache' = 'PARTIAL',
  'lookup.partial-cache.max-rows' = '1000000',
  'lookup.partial-cache.cache-missing-key' = 'true'
)"""


def dead_letter_sink(settings: Settings) -> str:
    return f"""
CREATE TABLE dead_letter (
  source_topic STRING,
  source_partition INT,
  source_offset BIGINT,
  code STRING,
  field STRING,
  reason STRING,
  payload STRING,
  rejected_at TIMESTAMP_LTZ(3)
) WITH (
  'connector' = 'kafka',
  'topic' = '{settings.topics.dead_letter}',
  'properties.bootstrap.servers' = '{settings.kafka.bootstrap}',
  'value.format' = 'json',
  'sink.delivery-guarantee' = 'at-least-once'
)"""


def _jdbc_connection(settings: Settings, table: str) -> str:
    # The user is trusted on loopback (no password, and the connector wants both or neither);
    # stringtype=unspecified lets PostgreSQL cast the metrics string into its JSONB column.
    url = f"jdbc:postgresql://127.0.0.1:{settings.postgres.port}/{settings.postgres.serving_db}" \
        f"?user={settings.postgres.user}&stringtype=unspecified"
    return f"'connector' = 'jdbc', 'url' = '{url}', 'table-name' = '{table}'"


def _jdbc(settings: Settings, table: str) -> str:
    return f"""{_jdbc_connection(settings, table)},
  'sink.buffer-flush.interval' = '500ms',
  'sink.buffer-flush.max-rows' = '1000'"""


def alerts_sink(settings: Settings) -> str:
    return f"""
CREATE TABLE alerts_sink (
  alert_id STRING, scenario STRING, entity_type STRING, entity_id STRING,
  window_start TIMESTAMP(3), window_end TIMESTAMP(3), severity STRING, metrics STRING,
  detected_at TIMESTAMP(3),
  PRIMARY KEY (alert_id) NOT ENFORCED
) WITH ({_jdbc(settings, 'alerts')})"""


def kpi_cell_sink(settings: Settings) -> str:
    return f"""
CREATE TABLE kpi_cell_sink (
  cell_id STRING, minute_start TIMESTAMP(3), call_attempts BIGINT, answered BIGINT,
  dropped_or_failed BIGINT, sms BIGINT, data_bytes BIGINT,
  PRIMARY KEY (cell_id, minute_start) NOT ENFORCED
) WITH ({_jdbc(settings, 'kpi_cell_minute')})"""


def kpi_service_sink(settings: Settings) -> str:
    return f"""
CREATE TABLE kpi_service_sink (
  service STRING, minute_start TIMESTAMP(3), records BIGINT, answered BIGINT,
  dropped_or_failed BIGINT, data_bytes BIGINT,
  PRIMARY KEY (service, minute_start) NOT ENFORCED
) WITH ({_jdbc(settings, 'kpi_service_minute')})"""


def late_records_sink(settings: Settings) -> str:
    """Appended counts (no key): each 10 s of processing time adds its own rows. The JDBC sink
    names the table's columns after these."""
    return f"""
CREATE TABLE late_records_sink (
  counted_at TIMESTAMP(3), `day` DATE, record_type STRING, records BIGINT
) WITH ({_jdbc(settings, 'late_records')})"""
