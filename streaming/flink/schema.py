"""Flink types of the parsed messages (the Python UDF's result) and of the events table."""

from __future__ import annotations

from pyflink.table import DataTypes

# streaming.messages.Event, minus start_time (the job keeps the source's rowtime instead).
EVENT_FIELDS = [
    ("record_type", DataTypes.STRING()),
    ("msisdn", DataTypes.STRING()),
    ("imei", DataTypes.STRING()),
    ("other_party", DataTypes.STRING()),
    ("other_foreign", DataTypes.BOOLEAN()),
    ("direction", DataTypes.STRING()),
    ("duration_s", DataTypes.INT()),
    ("call_result", DataTypes.STRING()),
    ("answered", DataTypes.BOOLEAN()),
    ("failed", DataTypes.BOOLEAN()),
    ("total_bytes", DataTypes.BIGINT()),
    ("cell_id", DataTypes.STRING()),
    ("mobile", DataTypes.BOOLEAN()),
    ("latitude", DataTypes.DOUBLE()),
    ("longitude", DataTypes.DOUBLE()),
    ("reach_km", DataTypes.DOUBLE()),
]
EVENT_NAMES = [n for n, _ in EVENT_FIELDS]

# What the parse UDF returns for each message: a verdict, then the event's fields (null when rejected).
VERDICT_FIELDS = [("ok", DataTypes.BOOLEAN()), ("code", DataTypes.STRING()), ("field", DataTypes.STRING()),
                  ("reason", DataTypes.STRING())]
PARSED_ROW = DataTypes.ROW([DataTypes.FIELD(n, t) for n, t in VERDICT_FIELDS + EVENT_FIELDS])

# The events table as the rules read it (batch tests build it with from_elements).
EVENT_ROW = DataTypes.ROW([DataTypes.FIELD("event_time", DataTypes.TIMESTAMP(3))]
                          + [DataTypes.FIELD(n, t) for n, t in EVENT_FIELDS])
