"""The shared validation rules on small inline records: each rule fires on its defect and only there."""

from __future__ import annotations

import datetime as dt

import pytest

from cdr.contract import RECORD_TYPES
from cdr.profile import load_profile
from cdr.validation import Context, check_record, coerce, rules_for

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


def test_coerce_types_json_values_and_flags_wrong_types():
    raw = {"record_id": "V1", "record_type": "voice", "start_time": "2026-01-09T10:00:00.5Z",
           "duration_s": 12, "roaming": False, "extra": "dropped"}
    typed, violation = coerce(raw, RECORD_TYPES["voice"])
    assert violation is None
    assert typed["start_time"] == dt.datetime(2026, 1, 9, 10, 0, 0, 500000, tzinfo=UTC)
    assert "extra" not in typed and typed["other_party"] is None
    for bad in ({"duration_s": "12O"}, {"duration_s": 1.5}, {"roaming": "false"}, {"start_time": "yesterday"},
                {"served_msisdn": 213661234567}):
        _, violation = coerce({**raw, **bad}, RECORD_TYPES["voice"])
        assert violation is not None and violation.code == "wrong_type" and violation.field == next(iter(bad))
