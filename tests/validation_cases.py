"""Lines on which the engines disagreed before the validation agreement tests, with the verdict all
three give now. Each engine's unit tests run them: the Python reference (test_validation.py), the
batch layer on a JSON Lines file (test_batch_validate.py) and the detection job's SQL in Flink
(test_stream_validation.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
CELL = "60301-00019-3"  # the known cell
VOICE = {
    "record_id": "V1", "record_type": "voice", "start_time": "2025-12-28T10:00:00.123456Z",
    "served_msisdn": "213661234567", "served_imsi": "603011234567890", "served_imei": "490154203237518",
    "cell_id": CELL, "access_technology": "4G", "roaming": False, "visited_plmn": None,
    "other_party": "239270356041", "direction": "MT", "duration_s": 0, "call_result": "no_answer",
}


@dataclass(frozen=True)
class Case:
    name: str
    line: str
    code: str | None
    field: str | None
    readable: bool = True  # a JSON object: the JSON table reads it (else only the raw twin does)

    @property
    def record_id(self) -> str:
        return f"case-{self.name}"


def _voice(name: str, **changes) -> str:
    return json.dumps({**VOICE, "record_id": f"case-{name}", **changes})


def _case(name: str, code: str | None, field: str | None = None, **changes) -> Case:
    return Case(name, _voice(name, **changes), code, field)


CASES = [
    # Values are typed from their text (the JVM readers see 60 and "60" alike); before, Python and
    # Spark rejected "60", and Python rejected the number 213661234567 Spark and Flink took as text.
    _case("duration-as-text", None, duration_s="60"),
    _case("roaming-as-text", None, roaming="false"),
    _case("msisdn-as-number", None, served_msisdn=213661234567),
    # Spark named no field for a wrong type (its reader's code only).
    _case("roaming-no", "wrong_type", "roaming", roaming="no"),
    # Beyond 32 bits: Python and Flink gave duration_over_24h, Spark wrong_type.
    _case("duration-beyond-int32", "wrong_type", "duration_s", duration_s=3_000_000_000),
    # Times: Spark read numbers as epoch seconds and accepted dates, offsets and year 0; Python
    # crashed on a number; Flink resolved 02-30 to 02-28 and 24:00 to the next day.
    _case("time-as-epoch", "wrong_type", "start_time", start_time=1766916000),
    _case("time-date-only", "wrong_type", "start_time", start_time="2025-12-28"),
    _case("time-with-offset", "wrong_type", "start_time", start_time="2025-12-28T10:00:00+01:00"),
    _case("time-year-0", "wrong_type", "start_time", start_time="0000-12-28T10:00:00Z"),
    _case("time-february-30", "wrong_type", "start_time", start_time="2025-02-30T10:00:00Z"),
    _case("time-24h", "wrong_type", "start_time", start_time="2025-12-28T24:00:00Z"),
    # Java's $ also matches before a final line terminator (\r, \u2028, ...), Python's only before \n.
    _case("msisdn-then-cr", "malformed_msisdn", "served_msisdn", served_msisdn="213661234567\r"),
    _case("imei-then-line-separator", "invalid_imei", "served_imei", served_imei="490154203237518\u2028"),
    _case("other-party-then-newline", "malformed_other_party", "other_party", other_party="239270356041\n"),
    # The record type: Spark checked none (null was missing_field, "fax" valid).
    _case("record-type-null", "unknown_record_type", "record_type", record_type=None),
    _case("record-type-fax", "unknown_record_type", "record_type", record_type="fax"),
    # The size limit: Spark had none; it counts every CDR field of the contract (apn is data's).
    _case("oversized", "oversized", None, apn="x" * 16_384),
    # Text after a complete object: Spark and Flink read the object, Python refused the line.
    Case("junk-after-object", _voice("junk-after-object") + " trailing", None, None),
    # Not JSON, which Spark's reader accepted by default; Python's json took NaN.
    Case("single-quotes", _voice("single-quotes").replace('"', "'"), "unparseable", None, readable=False),
    Case("nan", _voice("nan")[:-1] + ', "mos": NaN}', "unparseable", None, readable=False),
]
# A JSON array of records: its own verdict is the same everywhere, but Flink's JSON format also
# reads each object inside it as a message (no option turns that off; docs/streaming.md).
IN_ARRAY = Case("in-array", "[" + _voice("in-array") + "]", "unparseable", None, readable=False)
