"""Flink types of the events table the detection rules and KPIs read."""

from __future__ import annotations

from pyflink.table import DataTypes

# One valid CDR, reduced to what detection and KPIs read (identifiers as they arrived).
EVENT_FIELDS = [
    ("record_type", DataTypes.STRING()),
    ("msisdn", DataTypes.STRING()),
    ("imei", DataTypes.STRING()),
    ("other_party", DataTypes.STRING()),
    ("other_foreign", DataTypes.BOOLEAN()),  # the other party is outside the operator's country
    ("direction", DataTypes.STRING()),
    ("duration_s", DataTypes.INT()),
    ("call_result", DataTypes.STRING()),
    ("answered", DataTypes.BOOLEAN()),
    ("failed", DataTypes.BOOLEAN()),  # failed or dropped voice attempt
    ("total_bytes", DataTypes.BIGINT()),
    ("cell_id", DataTypes.STRING()),
    ("mobile", DataTypes.BOOLEAN()),  # served on a radio cell of the home network (not fixed, not roaming)
    ("latitude", DataTypes.DOUBLE()),
    ("longitude", DataTypes.DOUBLE()),
    ("reach_km", DataTypes.DOUBLE()),  # how far subscribers of this cell normally move (streaming.jobs.write_cells)
]
EVENT_NAMES = [n for n, _ in EVENT_FIELDS]

# The events table as the rules read it (batch tests build it with from_elements).
EVENT_ROW = DataTypes.ROW([DataTypes.FIELD("event_time", DataTypes.TIMESTAMP(3))]
                          + [DataTypes.FIELD(n, t) for n, t in EVENT_FIELDS])
