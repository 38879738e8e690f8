"""Parsing and validating Kafka messages with the shared rules (streaming.messages)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cdr.pseudonym import DEVELOPMENT_KEY, pseudonymise
from cdr.validation import MAX_RECORD_BYTES
from streaming.messages import Event, MessageParser, Rejection

CELL = "60301-00019-3"
VOICE = {
    "record_id": "V1", "record_type": "voice", "start_time": "2025-12-28T10:00:00.123456Z",
    "served_msisdn": "213661234567", "served_imsi": "603011234567890", "served_imei": "490154203237518",
    "cell_id": CELL, "access_technology": "4G", "roaming": False, "visited_plmn": None,
    "other_party": "239270356041", "direction": "MT", "duration_s": 0, "call_result": "no_answer",
}
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def parser() -> MessageParser:
    return MessageParser.for_profile(lambda v: pseudonymise(v, DEVELOPMENT_KEY), {CELL: (36.7, 3.1, 12.0)})


def _msg(**changes) -> bytes:
    return json.dumps({**VOICE, **changes}).encode()


def test_a_valid_record_becomes_a_pseudonymised_event(parser):
    e = parser.parse(_msg(), NOW)
    assert isinstance(e, Event)
    assert e.msisdn == pseudonymise("213661234567", DEVELOPMENT_KEY)
    assert e.other_party == pseudonymise("239270356041", DEVELOPMENT_KEY)
    assert e.imei == pseudonymise("490154203237518", DEVELOPMENT_KEY)
    assert e.other_foreign and e.mobile and not e.answered and not e.failed
    assert (e.latitude, e.longitude, e.reach_km) == (36.7, 3.1, 12.0)
    assert e.start_time == dt.datetime(2025, 12, 28, 10, 0, 0, 123456, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("payload, code", [
    (b"this is not json", "unparseable"),
    (b'[1, 2, 3]', "unparseable"),
    (_msg()[:60], "truncated_line"),
    (_msg(duration_s="ten"), "wrong_type"),
    (_msg(roaming="no"), "wrong_type"),
    (_msg(served_msisdn=None), "missing_field"),
    (_msg(record_type="fax"), "unknown_record_type"),
    (_msg(padding="x" * MAX_RECORD_BYTES), "oversized"),
    (_msg(served_msisdn="12345"), "malformed_msisdn"),
    (_msg(served_imei="490154203237517"), "invalid_imei"),
    (_msg(other_party="abc"), "malformed_other_party"),
    (_msg(call_result="maybe"), "invalid_value"),
    (_msg(duration_s=-5), "negative_duration"),
    (_msg(cell_id="60301-99999-9"), "unknown_cell"),
    (_msg(start_time="2027-01-01T00:00:00Z"), "timestamp_future"),
])
def test_a_malformed_message_is_rejected_with_its_rule_code_and_a_reason(parser, payload, code):
    r = parser.parse(payload, NOW)
    assert isinstance(r, Rejection)
    assert r.code == code
    assert r.reason


def test_a_roaming_record_has_no_position(parser):
    e = parser.parse(_msg(roaming=True, visited_plmn="20801", cell_id="20801-00001-1"), NOW)
    assert isinstance(e, Event)
    assert not e.mobile and e.latitude is None
