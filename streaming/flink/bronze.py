"""Flink SQL of the bronze landing: every topic, as it arrived, into Parquet on HDFS.

One Kafka source reads all CDR topics and the subscribers topic as raw strings (a malformed
message must land too: bronze keeps everything, validation happens downstream). Each topic gets
a filesystem sink of its own whose columns are the Kafka metadata, the payload and the contract's
fields of that record type, extracted with built-in JSON functions (NULL where a value is missing
or does not type), so the whole job runs in the JVM.

Layout, the same as a generated dataset's so the batch layer reads it like operator files:
``{bronze}/cdr/record_type=<type>/date=YYYY-MM-DD/part-*`` and ``{bronze}/subscribers/date=.../``.
The date is the record's own (its start time), or the Kafka timestamp's when the payload has
none. Files are committed at checkpoints (two-phase), so with the source's checkpointed offsets
every message is in exactly one committed file.
"""

from __future__ import annotations

from cdr.contract import RECORD_TYPES, SUBSCRIBERS, FieldType, RecordType
from cdr.settings import Settings
from streaming.flink.ddl import quote, raw_kafka_table, timestamp_from_json

# Kafka metadata and lineage columns, before the contract's fields, in every bronze table.
METADATA_COLUMNS = [
    ("kafka_key", "STRING"),
    ("kafka_topic", "STRING"),
    ("kafka_partition", "INT"),
    ("kafka_offset", "BIGINT"),
    ("kafka_timestamp", "TIMESTAMP(3)"),
    ("ingested_at", "TIMESTAMP(3)"),
    ("payload", "STRING"),
]
PARTITION_COLUMN = "date"
# Types the bronze files store, per contract type (timestamps without zone: UTC by convention).
_BRONZE_TYPES = {
    FieldType.STRING: "STRING", FieldType.INT32: "INT", FieldType.INT64: "BIGINT",
    FieldType.FLOAT64: "DOUBLE", FieldType.BOOL: "BOOLEAN", FieldType.DATE: "DATE",
    FieldType.TIMESTAMP: "TIMESTAMP(6)",  # the contract's microseconds, kept
}


def bronze_tables(settings: Settings) -> dict[str, tuple[str, RecordType, str]]:
    """Bronze table name -> (topic, record type, folder URI)."""
    root = settings.bronze_uri
    tables = {f"bronze_{rt}": (settings.topics.for_record_type(rt), RECORD_TYPES[rt], f"{root}/cdr/record_type={rt}")
              for rt in RECORD_TYPES}
    tables["bronze_subscribers"] = (settings.topics.subscribers, SUBSCRIBERS, f"{root}/subscribers")
    return tables


def field_expression(payload: str, name: str, ftype: FieldType) -> str:
    """The field's JSON value typed; NULL when missing or not of its type. (JSON_VALUE's own
    RETURNING clause does not support BIGINT in Flink 2.2: every type goes through TRY_CAST.)"""
    if ftype == FieldType.TIMESTAMP:
        return timestamp_from_json(payload, name, 6)
    value = f"JSON_VALUE({payload}, '$.{name}')"
    return value if ftype == FieldType.STRING else f"TRY_CAST({value} AS {_BRONZE_TYPES[ftype]})"


def source_topics(settings: Settings) -> list[str]:
    return [topic for topic, _, _ in bronze_tables(settings).values()]


def source_ddl(settings: Settings, group_id: str) -> str:
    return raw_kafka_table(settings, "kafka_messages", source_topics(settings), group_id)


def columns(rt: RecordType) -> list[tuple[str, str]]:
    """Every column of a bronze table but the partition column."""
    return METADATA_COLUMNS + [(f.name, _BRONZE_TYPES[f.type]) for f in rt.fields]


def sink_ddl(table: str, rt: RecordType, path: str) -> str:
    """Timestamps are UTC wall-clock values, stored as such whatever the JVM's zone (utc-timezone)."""
    cols = ",\n".join(f"  `{name}` {ftype}" for name, ftype in columns(rt))
    return f"""
CREATE TABLE {table} (
{cols},
  `{PARTITION_COLUMN}` STRING
) PARTITIONED BY (`{PARTITION_COLUMN}`) WITH (
  'connector' = 'filesystem',
  'path' = '{quote(path)}',
  'format' = 'parquet',
  'parquet.utc-timezone' = 'true',
  'parquet.compression' = 'SNAPPY'
)"""


def select_sql(topic: str, rt: RecordType, source: str = "kafka_messages") -> str:
    """The bronze rows of one topic: metadata, payload, typed fields, date."""
    # The record's own date; a payload without a readable start time goes by its Kafka timestamp.
    own_time = timestamp_from_json("payload", "start_time", 6) if rt.name != "subscribers" else "CAST(NULL AS TIMESTAMP(6))"
    fields = ",\n  ".join(f"{field_expression('payload', f.name, f.type)} AS `{f.name}`" for f in rt.fields)
    return f"""
SELECT
  message_key AS kafka_key, topic AS kafka_topic, `partition` AS kafka_partition, `offset` AS kafka_offset,
  CAST(kafka_timestamp AS TIMESTAMP(3)) AS kafka_timestamp,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)) AS ingested_at,
  payload,
  {fields},
  DATE_FORMAT(COALESCE({own_time}, CAST(kafka_timestamp AS TIMESTAMP(6))), 'yyyy-MM-dd') AS `{PARTITION_COLUMN}`
FROM {source}
WHERE topic = '{quote(topic)}'"""


def insert_sql(table: str, topic: str, rt: RecordType) -> str:
    return f"INSERT INTO {table}{select_sql(topic, rt)}"
