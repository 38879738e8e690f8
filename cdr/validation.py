"""Data-quality rules, declared once and evaluated by every layer.

A rule is data: a code (the quarantine / dead-letter code, equal to the generator's defect
code where one exists), a readable reason, a kind and its parameters. ``rules_for`` lists the
rules of a record type in evaluation order (the first violated rule is the record's code).
Engines interpret the declarations: ``check_record`` here (speed layer, tests) and the Spark
interpreter in ``batch`` build their checks from the same list, so a rule changes in one place.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from cdr.contract import FieldType, RecordType
from cdr.identifiers import is_valid_e164, is_valid_imei
from cdr.profile import Profile

# Every code a record can be rejected with. The generator injects the first twelve.
DEFECT_CODES: dict[str, str] = {
    "missing_field": "a mandatory field is missing",
    "malformed_msisdn": "the served MSISDN is not a valid number of the operator's numbering plan",
    "invalid_imei": "the IMEI is not 15 digits with a valid Luhn check digit",
    "negative_duration": "the duration is negative",
    "duration_over_24h": "the duration is longer than 24 hours",
    "timestamp_future": "the start time is in the future",
    "timestamp_past": "the start time is too far in the past",
    "unknown_cell": "the cell is not in the cell reference and the record is not roaming",
    "duplicate": "exact duplicate of a record already accepted",
    "negative_bytes": "a byte count is negative",
    "wrong_type": "a field has a value of the wrong type",
    "truncated_line": "the line is an incomplete JSON record",
}
OTHER_CODES: dict[str, str] = {
    "unparseable": "the record is not JSON (or CSV) at all",
    "unknown_record_type": "the record type is not one of the contract's",
    "invalid_value": "a field has a value outside its allowed set",
    "malformed_other_party": "the other party is not an E.164 number",
    "malformed_imsi": "the IMSI is not 15 digits of the operator's country",
    "oversized": "the record is larger than the maximum message size",
}
ALL_CODES = {**DEFECT_CODES, **OTHER_CODES}

MAX_DURATION_S = 86_400
FUTURE_TOLERANCE = dt.timedelta(hours=1)
MAX_AGE = dt.timedelta(days=1095)
MAX_RECORD_BYTES = 16_384
ROAMING_CELL_PATTERN = r"^[0-9]{5,6}-[0-9]{5}-[0-9]$"


@dataclass(frozen=True)
class Rule:
    code: str
    kind: str  # required | allowed | pattern | luhn | e164 | min | max | not_after_ref | not_before_ref | known_cell
    fields: tuple[str, ...]
    param: Any = None

    @property
    def reason(self) -> str:
        return ALL_CODES[self.code]


@dataclass(frozen=True)
class Violation:
    code: str
    field: str | None
    reason: str

    def message(self) -> str:
        return f"{self.reason} ({self.field})" if self.field else self.reason


def msisdn_pattern(profile: Profile) -> str:
    """Served numbers: country code + a mobile (operator prefix + 8 digits) or fixed (8 digits) number."""
    prefixes = "".join(sorted(o.prefix for o in profile.operators))
    fixed = int(profile.fixed["national_digits"])
    return rf"^{profile.country_code}([{prefixes}][0-9]{{8}}|[1-4][0-9]{{{fixed - 1}}})$"


def rules_for(rt: RecordType, profile: Profile) -> list[Rule]:
    """The rules of one record type, in evaluation order."""
    names = set(rt.field_names)
    rules = [Rule("missing_field", "required", tuple(f.name for f in rt.fields if f.required))]
    rules += [Rule("invalid_value", "allowed", (f.name,), f.allowed) for f in rt.fields
              if f.allowed and f.name != "record_type"]
    rules.append(Rule("malformed_msisdn", "pattern", ("served_msisdn",), msisdn_pattern(profile)))
    if "other_party" in names:
        rules.append(Rule("malformed_other_party", "e164", ("other_party",)))
    rules.append(Rule("malformed_imsi", "pattern", ("served_imsi",), rf"^{profile.mcc}[0-9]{{12}}$"))
    rules.append(Rule("invalid_imei", "luhn", ("served_imei",)))
    if "duration_s" in names:
        rules.append(Rule("negative_duration", "min", ("duration_s",), 0))
        rules.append(Rule("duration_over_24h", "max", ("duration_s",), MAX_DURATION_S))
    if "bytes_uplink" in names:
        rules.append(Rule("negative_bytes", "min", ("bytes_uplink", "bytes_downlink"), 0))
    rules.append(Rule("timestamp_future", "not_after_ref", ("start_time",), FUTURE_TOLERANCE))
    rules.append(Rule("timestamp_past", "not_before_ref", ("start_time",), MAX_AGE))
    rules.append(Rule("unknown_cell", "known_cell", ("cell_id", "roaming"), ROAMING_CELL_PATTERN))
    return rules


@dataclass
class Context:
    """What rules compare against: the processing time and the cell reference."""

    reference_time: dt.datetime
    known_cells: frozenset[str] = field(default_factory=frozenset)


def check_record(record: dict[str, Any], rules: Iterable[Rule], ctx: Context) -> Violation | None:
    """First violated rule of a parsed record (values already typed), or None if it is valid."""
    for rule in rules:
        bad = _violating_field(record, rule, ctx)
        if bad is not None:
            return Violation(rule.code, bad or None, rule.reason)
    return None


def _violating_field(rec: dict[str, Any], rule: Rule, ctx: Context) -> str | None:
    """The field that breaks ``rule`` ('' for a record-level break), or None when it holds."""
    k = rule.kind
    if k == "required":
        return next((f for f in rule.fields if rec.get(f) is None), None)
    f = rule.fields[0]
    v = rec.get(f)
    if k == "known_cell":
        if rec.get("roaming"):
            return None if re.match(rule.param, v or "") else f
        return None if v in ctx.known_cells else f
    if v is None:
        return None  # optional field absent: nothing to check
    if k == "allowed":
        return None if v in rule.param else f
    if k == "pattern":
        return None if isinstance(v, str) and re.match(rule.param, v) else f
    if k == "e164":
        return None if is_valid_e164(v) else f
    if k == "luhn":
        return None if is_valid_imei(v) else f
    if k == "min":
        return next((g for g in rule.fields if rec.get(g) is not None and rec[g] < rule.param), None)
    if k == "max":
        return None if v <= rule.param else f
    if k == "not_after_ref":
        return f if v > ctx.reference_time + rule.param else None
    if k == "not_before_ref":
        return f if v < ctx.reference_time - rule.param else None
    raise ValueError(f"unknown rule kind {k!r}")


# --- typing raw values (JSON messages, CSV cells) -----------------------------------------------


def coerce(record: dict[str, Any], rt: RecordType) -> tuple[dict[str, Any], Violation | None]:
    """Type a decoded JSON object by the contract. Wrong types give ``wrong_type``; unknown keys are dropped."""
    out: dict[str, Any] = {}
    for f in rt.fields:
        v = record.get(f.name)
        if v is None:
            out[f.name] = None
            continue
        try:
            out[f.name] = _coerce_value(v, f.type)
        except (TypeError, ValueError):
            return out, Violation("wrong_type", f.name, ALL_CODES["wrong_type"])
    return out, None


def _coerce_value(v: Any, t: FieldType) -> Any:
    if t is FieldType.STRING:
        if not isinstance(v, str):
            raise TypeError
        return v
    if t in (FieldType.INT32, FieldType.INT64):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError
        return v
    if t is FieldType.FLOAT64:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError
        return float(v)
    if t is FieldType.BOOL:
        if not isinstance(v, bool):
            raise TypeError
        return v
    if t is FieldType.TIMESTAMP:
        ts = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        return ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)
    if t is FieldType.DATE:
        return dt.date.fromisoformat(v)
    raise TypeError(t)
