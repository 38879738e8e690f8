"""The shared rules compiled to Flink SQL (streaming.flink.validation, .events) give every message
the verdict of the shared Python interpreter (cdr.validation.coerce + check_record).

The corpus (generated CDRs of every type, one message per rule broken, and messages that are not
JSON objects) is written as JSON lines and read by Flink's JSON format with the detection job's
column declarations, in Flink batch mode in the Flink venv; the oracle runs here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess

import pytest

from cdr.contract import RECORD_TYPES
from cdr.profile import load_profile
from cdr.settings import REPO_ROOT, get_settings
from cdr.validation import MAX_RECORD_BYTES, Context, check_record, coerce, rules_for

FLINK_PYTHON = get_settings().flink.venv_dir / "bin" / "python"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
CELL = "60301-00019-3"
VOICE = {
    "record_id": "V1", "record_type": "voice", "start_time": "2025-12-28T10:00:00.123456Z",
    "served_msisdn": "213661234567", "served_imsi": "603011234567890", "served_imei": "490154203237518",
    "cell_id": CELL, "access_technology": "4G", "roaming": False, "visited_plmn": None,
    "other_party": "239270356041", "direction": "MT", "duration_s": 0, "call_result": "no_answer",
}
BROKEN = {  # record_id -> (changes to VOICE, the code the shared rules give)
    "wrong-type-int": ({"duration_s": "ten"}, "wrong_type"),
    "wrong-type-float": ({"duration_s": 12.5}, "wrong_type"),
    "wrong-type-bool": ({"roaming": "no"}, "wrong_type"),
    "wrong-type-time": ({"start_time": "yesterday"}, "wrong_type"),
    "missing": ({"served_msisdn": None}, "missing_field"),
    "absent": ({"call_result": "__absent__"}, "missing_field"),
    "fax": ({"record_type": "fax"}, "unknown_record_type"),
    "no-type": ({"record_type": None}, "unknown_record_type"),
    "huge": ({"apn": "x" * MAX_RECORD_BYTES}, "oversized"),
    "msisdn": ({"served_msisdn": "12345"}, "malformed_msisdn"),
    "imei": ({"served_imei": "490154203237517"}, "invalid_imei"),
    "imei-short": ({"served_imei": "4901542032375"}, "invalid_imei"),
    "imsi": ({"served_imsi": "208011234567890"}, "malformed_imsi"),
    "other": ({"other_party": "abc"}, "malformed_other_party"),
    "other-zero": ({"other_party": "0661234567"}, "malformed_other_party"),
    "value": ({"call_result": "maybe"}, "invalid_value"),
    "technology": ({"access_technology": "6G"}, "invalid_value"),
    "negative": ({"duration_s": -5}, "negative_duration"),
    "long": ({"duration_s": 86_401}, "duration_over_24h"),
    "cell": ({"cell_id": "60301-99999-9"}, "unknown_cell"),
    "roaming-cell": ({"roaming": True, "visited_plmn": "20801", "cell_id": "nowhere"}, "unknown_cell"),
    "future": ({"start_time": "2027-01-01T00:00:00Z"}, "timestamp_future"),
    "past": ({"start_time": "2020-01-01T00:00:00Z"}, "timestamp_past"),
    "first-of-two": ({"served_msisdn": "12345", "served_imei": "490154203237517"}, "malformed_msisdn"),
    "roaming": ({"roaming": True, "visited_plmn": "20801", "cell_id": "20801-00001-1"}, None),
    "unknown-keys": ({"padding": "x" * MAX_RECORD_BYTES}, None),  # ignored, as in the batch layer
}
DATA = {"record_id": "D1", "record_type": "data", "start_time": "2025-12-28T11:00:00Z", "served_msisdn": "213661234567",
        "served_imsi": None, "served_imei": None, "cell_id": CELL, "access_technology": "3G", "roaming": False,
        "visited_plmn": None, "duration_s": 60, "bytes_uplink": 1000, "bytes_downlink": 5000, "apn": "internet"}
UNREADABLE = [  # (line, code)
    ("this is not json", "unparseable"),
    ("[1, 2, 3]", "unparseable"),
    ('"a string"', "unparseable"),
    (json.dumps(VOICE)[:60], "truncated_line"),
    ("z" * (MAX_RECORD_BYTES + 1), "oversized"),
]

SCRIPT = r'''
import glob, json, sys
from pyflink.table import EnvironmentSettings, TableEnvironment, DataTypes
from cdr.profile import load_profile
from streaming.flink.events import event_columns
from streaming.flink.schema import EVENT_NAMES
from streaming.flink.validation import (cdr_fields, code_of, field_of, reason, typed_columns, unreadable_code,
                                        unreadable_sql, violation)

folder, cells, out_dir = sys.argv[1], json.loads(open(sys.argv[2]).read()), sys.argv[3]
profile = load_profile()
env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
env.get_config().set("table.local-time-zone", "UTC")
env.get_config().set("parallelism.default", "1")
columns = ", ".join(f"`{f}` STRING" for f in cdr_fields())
env.execute_sql(f"""CREATE TABLE messages ({columns}) WITH ('connector' = 'filesystem', 'path' = '{folder}',
  'format' = 'json', 'json.ignore-parse-errors' = 'true', 'json.fail-on-missing-field' = 'false')""")
env.execute_sql(f"""CREATE TABLE raw_messages (payload STRING) WITH ('connector' = 'filesystem', 'path' = '{folder}',
  'format' = 'raw')""")
env.create_temporary_view("cells", env.from_elements(
    [tuple(c) for c in cells], DataTypes.ROW([DataTypes.FIELD(n, t) for n, t in [
        ("ref_cell", DataTypes.STRING()), ("latitude", DataTypes.DOUBLE()), ("longitude", DataTypes.DOUBLE()),
        ("reach_km", DataTypes.DOUBLE())]])))
# As in the job: the verdict is computed once in a view that several sinks read (a block boundary
# for the planner, so the outputs read it as a column instead of re-expanding it).
env.create_temporary_view("checked", env.sql_query(f"""
SELECT m.*, {violation(profile, now="TIMESTAMP '2026-01-01 00:00:00'")} AS violation FROM (
  SELECT m.*, {typed_columns(profile)}, c.ref_cell IS NOT NULL AS known_cell, c.latitude, c.longitude, c.reach_km
  FROM messages AS m LEFT JOIN cells AS c ON m.cell_id = c.ref_cell) AS m"""))
sinks = {
    "verdicts": ("record_id STRING, code STRING, field STRING, reason STRING",
                 f"SELECT record_id, code, field, {reason('code', 'field')} FROM ("
                 f"SELECT record_id, {code_of('violation')} AS code, {field_of('violation')} AS field FROM checked)"),
    "events": ("record_id STRING, " + ", ".join(f"{n} STRING" for n in EVENT_NAMES),
               "SELECT record_id, " + ", ".join(f"CAST({n} AS STRING)" for n in EVENT_NAMES)
               + f" FROM (SELECT record_id, {event_columns(profile)} FROM checked WHERE violation IS NULL)"),
    "unreadable": ("code STRING", f"SELECT {unreadable_code('payload')} FROM raw_messages WHERE {unreadable_sql('payload')}"),
}
statements = env.create_statement_set()
for name, (schema, query) in sinks.items():
    env.execute_sql(f"CREATE TABLE {name}_out ({schema}) WITH ('connector' = 'filesystem', "
                    f"'path' = '{out_dir}/{name}', 'format' = 'json')")
    statements.add_insert_sql(f"INSERT INTO {name}_out {query}")
statements.execute().wait()
'''


def _corpus() -> tuple[list[dict], list[tuple[str, float, float, float]]]:
    """Generated CDRs of every type (their own ids) and the VOICE variants; the known cells."""
    from streaming.source import LiveOptions, LiveSource

    source = LiveSource(LiveOptions(subscribers=300, days=1, start=dt.date(2025, 12, 28)))
    messages = [json.loads(v) for v in next(source.batches()).values[:3000]]
    cells = source.engine.pop.cells.table
    known = [(c, 36.7, 3.1, 12.0) for c in cells.column("cell_id").cast("string").to_pylist()] + [(CELL, 36.7, 3.1, 12.0)]
    for rid, (changes, _) in BROKEN.items():
        msg = {**VOICE, **changes, "record_id": rid}
        messages.append({k: v for k, v in msg.items() if v != "__absent__"})
    messages.append(DATA)
    return messages, known


def _oracle(message: dict, known: frozenset[str]) -> tuple[str | None, str | None]:
    """The shared Python interpreter, after the size limit on the contract's fields as text."""
    profile = load_profile()
    names = {f.name for rt in RECORD_TYPES.values() for f in rt.fields}
    size = sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for k, v in message.items()
               if k in names and v is not None)
    if size > MAX_RECORD_BYTES:
        return "oversized", None
    rt = RECORD_TYPES.get(message.get("record_type"))
    if rt is None:
        return "unknown_record_type", "record_type"
    rec, wrong = coerce(message, rt)
    if wrong:
        return wrong.code, wrong.field
    bad = check_record(rec, rules_for(rt, profile), Context(NOW, known))
    return (bad.code, bad.field) if bad else (None, None)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    if not FLINK_PYTHON.exists():
        pytest.fail(f"the Flink venv is missing ({FLINK_PYTHON}): run `make setup`")
    messages, known = _corpus()
    folder = tmp_path_factory.mktemp("messages")
    lines = [json.dumps(m) for m in messages] + [line for line, _ in UNREADABLE]
    (folder / "part-0").write_text("\n".join(lines) + "\n")
    cells = tmp_path_factory.mktemp("cells") / "cells.json"
    cells.write_text(json.dumps(known))
    out_dir = tmp_path_factory.mktemp("out")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([str(FLINK_PYTHON), "-c", SCRIPT, str(folder), str(cells), str(out_dir)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])

    def rows(name: str) -> list[dict]:
        return [json.loads(line) for f in sorted((out_dir / name).rglob("*")) if f.is_file()
                and not f.name.startswith(".") for line in f.read_text().splitlines()]

    out = {"verdicts": {r["record_id"]: [r["code"], r["field"], r["reason"]] for r in rows("verdicts")},
           "events": {r.pop("record_id"): list(r.values()) for r in rows("events")},
           "unreadable": [r["code"] for r in rows("unreadable")]}
    return messages, frozenset(c for c, *_ in known), out


def test_every_readable_message_gets_the_verdict_of_the_shared_rules(result):
    messages, known, out = result
    assert len(out["verdicts"]) == len(messages)
    expected = {m["record_id"]: _oracle(m, known) for m in messages}
    got = {rid: (code, field) for rid, (code, field, _) in out["verdicts"].items()}
    assert got == expected
    assert {rid: BROKEN[rid][1] for rid in BROKEN} == {rid: got[rid][0] for rid in BROKEN}
    generated = [m["record_id"] for m in messages if m["record_id"] not in BROKEN and m is not DATA]
    assert {m["record_type"] for m in messages if m["record_id"] in generated} == set(RECORD_TYPES)


def test_a_rejected_message_has_a_readable_reason(result):
    _, _, out = result
    assert out["verdicts"]["imei"][2] == "the IMEI is not 15 digits with a valid Luhn check digit (served_imei)"
    assert out["verdicts"]["huge"][2] == "the record is larger than the maximum message size"
    assert out["verdicts"]["roaming"][2] is None


def test_messages_that_are_not_json_objects_are_classified_from_their_text(result):
    _, _, out = result
    assert sorted(out["unreadable"]) == sorted(code for _, code in UNREADABLE)


def test_a_valid_message_becomes_an_event_with_its_cell_position(result):
    _, _, out = result
    # record_type, msisdn, imei, other_party, other_foreign, direction, duration_s, call_result, answered,
    # failed, total_bytes, cell_id, mobile, latitude, longitude, reach_km
    # (as text, the way the test's JSON sink writes them)
    assert out["events"]["D1"] == ["data", "213661234567", None, None, "FALSE", None, "60", None, "FALSE", "FALSE",
                                   "6000", CELL, "TRUE", "36.7", "3.1", "12.0"]
    roaming = out["events"]["roaming"]
    assert roaming[4] == "TRUE" and roaming[12] == "FALSE" and roaming[13:] == [None, None, None]
