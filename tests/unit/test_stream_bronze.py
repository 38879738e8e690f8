"""The bronze landing's SQL (streaming.flink.bronze) on inline Kafka messages, in Flink batch mode.

The SELECT each topic's sink runs is applied to a VALUES table shaped like the Kafka source;
PyFlink lives in the Flink venv, so it runs there in a subprocess that prints rows as JSON.
Bronze keeps every message: a malformed one lands with its payload and NULL fields.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cdr.contract import DATA, RECORD_TYPES, SUBSCRIBERS, VOICE
from cdr.settings import REPO_ROOT, get_settings
from streaming.bronze_tables import statements, view_ddl
from streaming.flink.bronze import METADATA_COLUMNS, bronze_tables, columns, select_sql

FLINK_PYTHON = get_settings().flink.venv_dir / "bin" / "python"

VOICE_OK = {"record_id": "V1", "record_type": "voice", "start_time": "2025-12-28T10:00:00.123456Z",
            "served_msisdn": "213551234567", "served_imsi": "603011234567890", "served_imei": "353456789012348",
            "cell_id": "C1", "access_technology": "4G", "roaming": False, "visited_plmn": None,
            "other_party": "213661234567", "direction": "MO", "duration_s": 93, "call_result": "answered"}
DATA_OK = {"record_id": "D1", "record_type": "data", "start_time": "2025-12-29T23:59:59.999999Z",
           "served_msisdn": "213551234567", "cell_id": "C1", "access_technology": "5G",
           "duration_s": 600, "bytes_uplink": 5_000_000_000, "bytes_downlink": 12}
MESSAGES = [
    # (topic, offset, kafka timestamp, payload)
    ("t.voice", 0, "2026-01-05 08:00:00", json.dumps(VOICE_OK)),
    ("t.voice", 1, "2026-01-05 08:00:01", json.dumps({**VOICE_OK, "record_id": "V2", "duration_s": "ten"})),
    ("t.voice", 2, "2026-01-05 08:00:02", "not json at all"),
    ("t.voice", 3, "2026-01-05 08:00:03", '{"record_id":"V4","record_type":"voice","start_time":"2025-12-28T1'),
    ("t.data", 0, "2026-01-05 08:00:04", json.dumps(DATA_OK)),
]

SCRIPT = r'''
import json, sys
from pyflink.table import EnvironmentSettings, TableEnvironment
from cdr.contract import DATA, VOICE
from streaming.flink.bronze import select_sql

env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
env.get_config().set("table.local-time-zone", "UTC")
env.get_config().set("parallelism.default", "1")
messages = json.loads(sys.argv[1])
values = ", ".join(
    "('{}', 'k', '{}', 0, CAST({} AS BIGINT), TO_TIMESTAMP_LTZ(UNIX_TIMESTAMP('{}') * 1000, 3))".format(
        payload.replace("'", "''"), topic, offset, ts) for topic, offset, ts, payload in messages)
env.execute_sql("CREATE TEMPORARY VIEW kafka_messages AS SELECT * FROM (VALUES " + values + ") AS "
                "m(payload, message_key, topic, `partition`, `offset`, kafka_timestamp)")
out = {}
for topic, rt in (("t.voice", VOICE), ("t.data", DATA)):
    names = [n for n in env.sql_query(select_sql(topic, rt)).get_schema().get_field_names() if n != "ingested_at"]
    # Rendered by Flink: collecting a TIMESTAMP(6) into Python would cut it to milliseconds.
    as_text = env.sql_query("SELECT " + ", ".join(f"CAST(`{n}` AS STRING)" for n in names)
                            + " FROM (" + select_sql(topic, rt) + ")")
    out[topic] = [dict(zip(names, row)) for row in as_text.execute().collect()]
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def landed() -> dict:
    if not FLINK_PYTHON.exists():
        pytest.fail(f"the Flink venv is missing ({FLINK_PYTHON}): run `make setup`")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([str(FLINK_PYTHON), "-c", SCRIPT, json.dumps(MESSAGES)], env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def _meta(topic: str, offset: int, ts: str, payload: str) -> dict:
    return {"kafka_key": "k", "kafka_topic": topic, "kafka_partition": "0", "kafka_offset": str(offset),
            "kafka_timestamp": f"{ts}.000", "payload": payload}


def test_every_message_lands_with_its_metadata_and_payload(landed):
    got = [{k: r[k] for k, _ in METADATA_COLUMNS if k != "ingested_at"} for r in landed["t.voice"] + landed["t.data"]]
    assert got == [_meta(topic, offset, ts, payload) for topic, offset, ts, payload in MESSAGES]


def test_fields_are_typed_from_the_payload_and_null_where_they_do_not_type(landed):
    voice = {r["kafka_offset"]: r for r in landed["t.voice"]}
    fields = {k: v for k, v in voice["0"].items() if k in VOICE.field_names}
    assert fields == {**{k: None if v is None else str(v) for k, v in VOICE_OK.items()},
                      "roaming": "FALSE", "start_time": "2025-12-28 10:00:00.123456"}
    assert voice["0"]["date"] == "2025-12-28"
    assert (voice["1"]["record_id"], voice["1"]["duration_s"], voice["1"]["call_result"]) == ("V2", None, "answered")
    (data,) = landed["t.data"]
    assert (data["bytes_uplink"], data["bytes_downlink"], data["date"]) == ("5000000000", "12", "2025-12-29")


def test_a_payload_without_a_readable_start_time_goes_by_the_kafka_date(landed):
    voice = {r["kafka_offset"]: r for r in landed["t.voice"]}
    for offset in ("2", "3"):
        assert all(voice[offset][f] is None for f in VOICE.field_names), voice[offset]
        assert voice[offset]["date"] == "2026-01-05"


def test_bronze_tables_follow_the_generated_dataset_layout():
    settings = get_settings()
    tables = bronze_tables(settings)
    root = settings.bronze_uri
    assert {name: (topic, path) for name, (topic, _, path) in tables.items()} == {
        **{f"bronze_{rt}": (settings.topics.for_record_type(rt), f"{root}/cdr/record_type={rt}") for rt in RECORD_TYPES},
        "bronze_subscribers": (settings.topics.subscribers, f"{root}/subscribers"),
    }
    assert [name for name, _ in columns(SUBSCRIBERS)][len(METADATA_COLUMNS):] == SUBSCRIBERS.field_names


def test_hive_statements_register_every_table_and_a_view_on_the_shared_columns():
    settings = get_settings()
    sql = statements(settings)
    assert sql[0] == f"CREATE DATABASE IF NOT EXISTS `{settings.bronze.database}`"
    assert sum(s.startswith("MSCK REPAIR TABLE") for s in sql) == len(RECORD_TYPES) + 1
    view = view_ddl(settings)
    assert view.count("UNION ALL") == len(RECORD_TYPES) - 1
    assert "`bytes_uplink`" not in view and "`duration_s`" not in view  # not on every CDR type
    assert "`served_msisdn`" in view and "`payload`" in view and "`date`" in view
    assert "bytes_uplink" in [n for n, _ in columns(DATA)]
