"""The shared rules compiled to Flink SQL (streaming.flink.validation, .events) give every message
the verdict of the shared Python reference (cdr.validation.check_message).

The corpus (generated CDRs of every type, one message per rule broken, and messages that are not
JSON objects) is written as JSON lines and read by Flink's JSON format with the detection job's
column declarations, in Flink batch mode in the Flink venv (tests/validation_engines.py); the
reference runs here. tests/unit/test_validation_agreement.py does the same on generated corpora,
with the batch layer as the third engine.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cdr.contract import RECORD_TYPES
from cdr.profile import load_profile
from cdr.validation import MAX_RECORD_BYTES, Context, check_message
from tests import validation_cases as cases
from tests.validation_engines import run_flink

NOW, CELL, VOICE = cases.NOW, cases.CELL, cases.VOICE
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
    """The shared Python reference's verdict."""
    bad = check_message(message, load_profile(), Context(NOW, known))
    return (bad.code, bad.field) if bad else (None, None)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    messages, known = _corpus()
    lines = [json.dumps(m) for m in messages] + [line for line, _ in UNREADABLE] + \
        [case.line for case in [*cases.CASES, cases.IN_ARRAY]]
    out = run_flink(lines, known, NOW, tmp_path_factory.mktemp("flink"))
    out = {"verdicts": {r["record_id"]: [r["code"], r["field"], r["reason"]] for r in out["verdicts"]},
           "events": {r.pop("record_id"): list(r.values()) for r in out["events"]},
           "unreadable": [r["code"] for r in out["unreadable"]]}
    return messages, frozenset(c for c, *_ in known), out


def test_every_readable_message_gets_the_verdict_of_the_shared_rules(result):
    messages, known, out = result
    got = {rid: (code, field) for rid, (code, field, _) in out["verdicts"].items() if not rid.startswith("case-")}
    assert len(got) == len(messages)
    expected = {m["record_id"]: _oracle(m, known) for m in messages}
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
    unreadable_cases = [case.code for case in [*cases.CASES, cases.IN_ARRAY] if not case.readable]
    assert sorted(out["unreadable"]) == sorted([code for _, code in UNREADABLE] + unreadable_cases)


def test_the_lines_the_engines_disagreed_on_get_the_shared_verdict(result):
    _, _, out = result
    expected = {case.record_id: (case.code, case.field) for case in cases.CASES if case.readable}
    assert {rid: tuple(out["verdicts"][rid][:2]) for rid in expected} == expected


def test_the_objects_inside_a_json_array_are_read_as_messages_too(result):
    """A documented limit (docs/streaming.md, "Validation"): Flink's JSON format reads each object of
    a message that is a JSON array as a message; the array itself is dead-lettered as unparseable
    (the previous test), as the other engines reject the line."""
    _, _, out = result
    assert out["verdicts"][cases.IN_ARRAY.record_id][:2] == [None, None]


def test_a_valid_message_becomes_an_event_with_its_cell_position(result):
    _, _, out = result
    # record_type, msisdn, imei, other_party, other_foreign, direction, duration_s, call_result, answered,
    # failed, total_bytes, cell_id, mobile, latitude, longitude, reach_km
    # (as text, the way the test's JSON sink writes them)
    assert out["events"]["D1"] == ["data", "213661234567", None, None, "FALSE", None, "60", None, "FALSE", "FALSE",
                                   "6000", CELL, "TRUE", "36.7", "3.1", "12.0"]
    roaming = out["events"]["roaming"]
    assert roaming[4] == "TRUE" and roaming[12] == "FALSE" and roaming[13:] == [None, None, None]
