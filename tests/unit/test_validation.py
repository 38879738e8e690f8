"""The shared validation rules on small inline records: each rule fires on its defect and only there."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cdr.contract import RECORD_TYPES
from cdr.profile import load_profile
from cdr.validation import Context, check_line, check_record, coerce, rules_for
from tests import validation_cases as cases
from tests.validation_cases import CASES, IN_ARRAY

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 10, 12, tzinfo=UTC)
CTX = Context(reference_time=NOW, known_cells=frozenset({"60301-00001-1"}))
VOICE_RULES = rules_for(RECORD_TYPES["voice"], load_profile())
DATA_RULES = rules_for(RECORD_TYPES["data"], load_profile())


def voice(**changes):
    rec = {
        "record_id": "V202601090000000001", "record_type": "voice",
        "start_time": dt.datetime(2026, 1, 9, 10, tzinfo=UTC), "served_msisdn": "213661234567",
        "served_imsi": "603011234567890", "served_imei": "490154203237518", "cell_id": "60301-00001-1",
        "access_technology": "4G", "roaming": False, "visited_plmn": None, "other_party": "33612345678",
        "direction": "MO", "duration_s": 95, "call_result": "answered",
    }
    rec.update(changes)
    return rec


def code(rec, rules=VOICE_RULES):
    v = check_record(rec, rules, CTX)
    return v.code if v else None


@pytest.mark.parametrize("changes, expected", [
    ({}, None),
    ({"served_imsi": None, "served_imei": None, "served_msisdn": "21323123456"}, None),  # fixed line
    ({"roaming": True, "visited_plmn": "20801", "cell_id": "20801-12345-1"}, None),  # abroad: foreign cell
    ({"served_msisdn": None}, "missing_field"),
    ({"start_time": None}, "missing_field"),
    ({"call_result": "hung_up"}, "invalid_value"),
    ({"served_msisdn": "2136612345678"}, "malformed_msisdn"),  # one digit too many
    ({"served_msisdn": "0661234567"}, "malformed_msisdn"),  # national format
    ({"served_msisdn": "21366123O567"}, "malformed_msisdn"),
    ({"served_msisdn": "213861234567"}, "malformed_msisdn"),  # no operator uses 8
    ({"other_party": "+33612345678"}, "malformed_other_party"),
    ({"served_imsi": "60301123456789"}, "malformed_imsi"),  # 14 digits
    ({"served_imei": "490154203237519"}, "invalid_imei"),
    ({"duration_s": -1}, "negative_duration"),
    ({"duration_s": 86_401}, "duration_over_24h"),
    ({"duration_s": 86_400}, None),
    ({"start_time": NOW + dt.timedelta(hours=2)}, "timestamp_future"),
    ({"start_time": NOW + dt.timedelta(minutes=30)}, None),  # clock skew tolerated
    ({"start_time": dt.datetime(1995, 3, 1, tzinfo=UTC)}, "timestamp_past"),
    ({"cell_id": "60301-99001-1"}, "unknown_cell"),
    ({"roaming": True, "cell_id": "not-a-cell"}, "unknown_cell"),
])
def test_voice_rules(changes, expected):
    assert code(voice(**changes)) == expected


def test_first_broken_rule_wins():
    assert code(voice(served_msisdn=None, duration_s=-5)) == "missing_field"


def test_negative_bytes_on_either_direction():
    rec = {k: v for k, v in voice().items() if k in RECORD_TYPES["data"].field_names}
    rec.update(record_type="data", bytes_uplink=10, bytes_downlink=2000, apn="internet", duration_s=60)
    assert code(rec, DATA_RULES) is None
    assert code(dict(rec, bytes_uplink=-1), DATA_RULES) == "negative_bytes"
    assert code(dict(rec, bytes_downlink=-7), DATA_RULES) == "negative_bytes"


def test_coerce_types_json_values_from_their_text_and_flags_wrong_types():
    raw = {"record_id": "V1", "record_type": "voice", "start_time": "2026-01-09T10:00:00.5Z",
           "duration_s": 12, "roaming": False, "extra": "dropped"}
    typed, violation = coerce(raw, RECORD_TYPES["voice"])
    assert violation is None
    assert typed["start_time"] == dt.datetime(2026, 1, 9, 10, 0, 0, 500000, tzinfo=UTC)
    assert "extra" not in typed and typed["other_party"] is None
    # The JVM engines read a JSON value as its text, whatever its JSON type: so does the reference.
    for name, value, expected in (("duration_s", "12", 12), ("roaming", "false", False),
                                  ("served_msisdn", 213661234567, "213661234567")):
        typed, violation = coerce({**raw, name: value}, RECORD_TYPES["voice"])
        assert violation is None and typed[name] == expected
    for bad in ({"duration_s": "12O"}, {"duration_s": 1.5}, {"duration_s": 2**31}, {"roaming": "False"},
                {"start_time": "yesterday"}, {"start_time": 1767225600}, {"start_time": "2026-02-30T00:00:00Z"},
                {"duration_s": [12]}):
        _, violation = coerce({**raw, **bad}, RECORD_TYPES["voice"])
        assert violation is not None and violation.code == "wrong_type" and violation.field == next(iter(bad))


@pytest.mark.parametrize("case", CASES + [IN_ARRAY], ids=lambda c: c.name)
def test_the_lines_the_engines_disagreed_on_get_the_shared_verdict(case):
    violation = check_line(case.line, load_profile(), Context(cases.NOW, frozenset([cases.CELL])))
    assert ((violation.code, violation.field) if violation else (None, None)) == (case.code, case.field)


def test_a_line_is_classified_by_its_first_json_value():
    ctx = Context(NOW, frozenset())
    assert check_line("not json", load_profile(), ctx).code == "unparseable"
    assert check_line('{"record_id": "V1", "record_ty', load_profile(), ctx).code == "truncated_line"
    assert check_line("  [1, 2]  ", load_profile(), ctx).code == "unparseable"
    assert check_line("x" * 16_385, load_profile(), ctx).code == "oversized"
    assert check_line('{"record_type": "fax"} and more', load_profile(), ctx).code == "unknown_record_type"


def test_a_record_in_a_file_of_another_type_is_of_an_unknown_type():
    line = json.dumps(dict(cases.VOICE, record_id="V1"))
    ctx = Context(cases.NOW, frozenset([cases.CELL]))
    assert check_line(line, load_profile(), ctx, record_type="voice") is None
    assert check_line(line, load_profile(), ctx, record_type="sms").code == "unknown_record_type"
