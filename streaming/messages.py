"""Parsing and validating one Kafka message with the shared rules (pure Python, no Flink).

The detection job calls ``parse_message`` from a Python UDF on every CDR message. A valid
message becomes an ``Event``: the few typed fields the detection rules and KPIs need, with
every identifier already pseudonymised (raw identifiers never leave this function except in
the dead-letter payload, which stays in Kafka like the input). An invalid one carries the
rule code and reason of the first violation, exactly as the batch layer's quarantine would.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable

from cdr.contract import RECORD_TYPES
from cdr.validation import ALL_CODES, MAX_RECORD_BYTES, Context, Rule, check_record, coerce, rules_for

MOBILE_TECHNOLOGIES = frozenset({"2G", "3G", "4G", "5G"})


@dataclass(frozen=True)
class Event:
    """A valid CDR, reduced to what detection and KPIs read."""

    record_type: str
    start_time: dt.datetime  # UTC
    msisdn: str  # pseudonym of served_msisdn
    imei: str | None  # pseudonym
    other_party: str | None  # pseudonym
    other_foreign: bool  # the other party is outside the operator's country
    direction: str | None
    duration_s: int | None
    call_result: str | None
    answered: bool
    failed: bool  # failed or dropped voice attempt
    total_bytes: int | None
    cell_id: str
    mobile: bool  # served on a radio cell of the home network (not fixed, not roaming)
    latitude: float | None
    longitude: float | None
    reach_km: float | None  # how far subscribers of this cell normally move (see streaming.jobs.write_cells)


@dataclass(frozen=True)
class Rejection:
    code: str
    field: str | None
    reason: str


class MessageParser:
    """Parses messages of every CDR type; built once per Flink worker (rules and cells loaded once)."""

    def __init__(self, pseudonymise: Callable[[str], str], cells: dict[str, tuple[float, float, float]],
                 country_code: str, rules: dict[str, list[Rule]]):
        self._pseudo = pseudonymise
        self._cells = cells
        self._country = country_code
        self._rules = rules
        self._known = frozenset(cells)

    @classmethod
    def for_profile(cls, pseudonymise: Callable[[str], str], cells: dict[str, tuple[float, float, float]],
                    profile_name: str = "algeria") -> "MessageParser":
        from cdr.profile import load_profile

        profile = load_profile(profile_name)
        rules = {name: rules_for(rt, profile) for name, rt in RECORD_TYPES.items()}
        return cls(pseudonymise, cells, str(profile.country_code), rules)

    def parse(self, payload: bytes | str | None, now: dt.datetime | None = None) -> Event | Rejection:
        if payload is None:
            return _reject("unparseable", None, "empty message")
        raw = payload.encode() if isinstance(payload, str) else payload
        if len(raw) > MAX_RECORD_BYTES:
            return _reject("oversized", None, f"{len(raw)} bytes > {MAX_RECORD_BYTES}")
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            text = raw.decode("utf-8", "replace").strip()
            # A record cut short starts like one; anything else is not JSON at all.
            code = "truncated_line" if text.startswith("{") and not text.endswith("}") else "unparseable"
            return _reject(code)
        if not isinstance(obj, dict):
            return _reject("unparseable", None, "a JSON value that is not an object")
        record_type = obj.get("record_type")
        if record_type not in RECORD_TYPES:
            return _reject("unknown_record_type", "record_type")
        rec, wrong = coerce(obj, RECORD_TYPES[record_type])
        if wrong:
            return Rejection(wrong.code, wrong.field, wrong.message())
        ctx = Context(now or dt.datetime.now(dt.timezone.utc), self._known)
        bad = check_record(rec, self._rules[record_type], ctx)
        if bad:
            return Rejection(bad.code, bad.field, bad.message())
        return self._event(rec)

    def _event(self, rec: dict[str, Any]) -> Event:
        other = rec.get("other_party")
        result = rec.get("call_result")
        up, down = rec.get("bytes_uplink"), rec.get("bytes_downlink")
        coords = None if rec["roaming"] else self._cells.get(rec["cell_id"])
        return Event(
            record_type=rec["record_type"],
            start_time=rec["start_time"].astimezone(dt.timezone.utc),
            msisdn=self._pseudo(rec["served_msisdn"]),
            imei=self._pseudo(rec["served_imei"]) if rec.get("served_imei") else None,
            other_party=self._pseudo(other) if other else None,
            other_foreign=bool(other) and not other.startswith(self._country),
            direction=rec.get("direction"),
            duration_s=rec.get("duration_s"),
            call_result=result,
            answered=result == "answered",
            failed=result in ("failed", "dropped"),
            total_bytes=(up or 0) + (down or 0) if up is not None or down is not None else None,
            cell_id=rec["cell_id"],
            mobile=not rec["roaming"] and rec["access_technology"] in MOBILE_TECHNOLOGIES,
            latitude=coords[0] if coords else None,
            longitude=coords[1] if coords else None,
            reach_km=coords[2] if coords else None,
        )


def _reject(code: str, field: str | None = None, detail: str | None = None) -> Rejection:
    reason = ALL_CODES[code] + (f" ({detail})" if detail else f" ({field})" if field else "")
    return Rejection(code, field, reason)


def load_cells(path) -> dict[str, tuple[float, float, float]]:
    """Cell id -> (latitude, longitude, reach_km) from the file ``streaming.jobs.write_cells`` writes."""
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["cell_id", "latitude", "longitude", "reach_km"])
    return {c: (la, lo, r) for c, la, lo, r in zip(*(t.column(n).to_pylist() for n in t.column_names))}
