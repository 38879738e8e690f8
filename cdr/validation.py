"""Data-quality rules, declared once and evaluated by every layer.

A rule is data: a code (the quarantine / dead-letter code, equal to the generator's defect
code where one exists), a readable reason, a kind and its parameters. ``rules_for`` lists the
rules of a record type in evaluation order (the first violated rule is the record's code).
Engines interpret the declarations: ``check_line``/``check_message``/``check_record`` here (the
reference, used by tests), the Spark interpreter in ``batch`` and the Flink SQL compiler in
``streaming.flink.validation`` build their checks from the same list, so a rule changes in one place.

A line (a JSON Lines row, a Kafka message) gets the first code of, in this order:

1. not a JSON object (its first JSON value, as the JVM engines read it: see ``read_line``):
   ``oversized`` (longer than ``MAX_RECORD_BYTES``), ``truncated_line`` (starts with ``{``, does not
   end with ``}``, spaces aside), else ``unparseable``;
2. ``oversized``: the text of the contract's fields (of every CDR type) is longer than
   ``MAX_RECORD_BYTES`` (unknown keys are ignored);
3. ``unknown_record_type``: ``record_type`` is not a contract type (or, where the record arrived in
   a file or topic of one type, not that type);
4. ``wrong_type``: the first field, in contract order, whose text does not type (``TEXT_PATTERNS``);
5. the rules of ``rules_for``, in order.

The batch layer adds ``duplicate`` (a repeated record_id, a cross-record check) between 4 and 5.

Values are typed from their text. The JVM engines read a JSON value as its text whatever its JSON
type (Flink's JSON format and Spark's JSON reader both give ``453`` and ``"453"`` as "453", ``true``
as "true", an object as its compact JSON), so the reference does the same (``value_text``) and every
engine types the text by one grammar: a message gets the same verdict in every layer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from cdr.contract import RECORD_TYPES, FieldType, RecordType
from cdr.identifiers import luhn_check_digit
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
E164_PATTERN = r"^[1-9][0-9]{7,14}$"  # digits without '+', no leading zero, at most 15
IMEI_PATTERN = r"^[0-9]{15}$"  # and the 15th digit is the Luhn check digit of the first 14
FIELD_SEP = "|"  # between a code and its field where engines carry both in one string ("wrong_type|mos")

# The text a value of each contract type must have (every engine types a value from its text).
# Integers: at most 18 digits (within 64 bits), and within 32 bits for INT32 fields: a value that
# does not fit the contract's type is a wrong type. Times: ISO-8601 UTC, microseconds at most, years
# 1 to 9999, and a date or time that exists (not 2025-02-30, not 24:00).
INT_PATTERN = r"^-?[0-9]{1,18}$"
TEXT_PATTERNS: dict[FieldType, str] = {
    FieldType.INT32: INT_PATTERN,
    FieldType.INT64: INT_PATTERN,
    FieldType.FLOAT64: r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$",
    FieldType.BOOL: r"^(true|false)$",
    FieldType.TIMESTAMP: r"^(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z?$",
    FieldType.DATE: r"^(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}$",
}
INT32_RANGE = (-(2**31), 2**31 - 1)


def jvm_regex(pattern: str) -> str:
    """A ``^...$`` pattern for the JVM engines' regex search (Spark's ``rlike``, Flink's ``REGEXP``)
    that matches exactly what Python's ``re.fullmatch`` does: Java's ``$`` also matches before a
    final line terminator ("213661234567\\n" would pass), ``\\z`` only at the very end."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"not an anchored pattern: {pattern!r}")
    return pattern[:-1] + r"\z"


def cdr_fields() -> dict[str, FieldType]:
    """Every field of every CDR type, in contract order (the fields whose text counts for ``oversized``)."""
    out: dict[str, FieldType] = {}
    for rt in RECORD_TYPES.values():
        for f in rt.fields:
            out.setdefault(f.name, f.type)
    return out


@dataclass(frozen=True)
class Rule:
    code: str
    kind: str  # required | allowed | pattern | luhn | min | max | not_after_ref | not_before_ref | known_cell
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
        rules.append(Rule("malformed_other_party", "pattern", ("other_party",), E164_PATTERN))
    rules.append(Rule("malformed_imsi", "pattern", ("served_imsi",), rf"^{profile.mcc}[0-9]{{12}}$"))
    rules.append(Rule("invalid_imei", "luhn", ("served_imei",), IMEI_PATTERN))
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
            return None if re.fullmatch(rule.param, v or "") else f
        return None if v in ctx.known_cells else f
    if v is None:
        return None  # optional field absent: nothing to check
    if k == "allowed":
        return None if v in rule.param else f
    if k == "pattern":
        return None if isinstance(v, str) and re.fullmatch(rule.param, v) else f
    if k == "luhn":
        ok = isinstance(v, str) and re.fullmatch(rule.param, v) and luhn_check_digit(v[:14]) == int(v[14])
        return None if ok else f
    if k == "min":
        return next((g for g in rule.fields if rec.get(g) is not None and rec[g] < rule.param), None)
    if k == "max":
        return None if v <= rule.param else f
    if k == "not_after_ref":
        return f if v > ctx.reference_time + rule.param else None
    if k == "not_before_ref":
        return f if v < ctx.reference_time - rule.param else None
    raise ValueError(f"unknown rule kind {k!r}")


# --- reading lines and typing values (JSON messages, CSV cells) ------------------------------


def value_text(v: Any) -> str | None:
    """A decoded JSON value as the JVM engines read it into a text column: strings as they are,
    ``true``/``false``, numbers and objects and arrays as compact JSON; None for null. (A float can
    be spelt differently from Jackson's, ``1e+20`` against ``1.0E20``: no rule tells them apart, the
    size limit aside by a character or two.)"""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def type_text(text: str, t: FieldType) -> Any:
    """The value of ``text`` as contract type ``t``; None when the text does not type."""
    if t is FieldType.STRING:
        return text
    if not re.fullmatch(TEXT_PATTERNS[t], text):
        return None
    try:
        if t in (FieldType.INT32, FieldType.INT64):
            n = int(text)
            return n if t is FieldType.INT64 or INT32_RANGE[0] <= n <= INT32_RANGE[1] else None
        if t is FieldType.FLOAT64:
            return float(text)
        if t is FieldType.BOOL:
            return text == "true"
        if t is FieldType.TIMESTAMP:
            return dt.datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=dt.timezone.utc)
        if t is FieldType.DATE:
            return dt.date.fromisoformat(text)
    except ValueError:  # a date or time that does not exist (2025-02-30, 24:00)
        return None
    raise TypeError(t)


def coerce(record: dict[str, Any], rt: RecordType) -> tuple[dict[str, Any], Violation | None]:
    """Type a decoded JSON object by the contract, each value from its text (``value_text``); the
    first field whose text does not type gives ``wrong_type``; unknown keys are dropped."""
    out: dict[str, Any] = {}
    for f in rt.fields:
        text = value_text(record.get(f.name))
        value = None if text is None else type_text(text, f.type)
        if text is not None and value is None:
            return out, Violation("wrong_type", f.name, ALL_CODES["wrong_type"])
        out[f.name] = value
    return out, None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def read_line(line: str) -> dict[str, Any] | Violation:
    """A line decoded as a JSON object, or the violation of a line that is not one.

    The line's first JSON value is read and any text after it ignored, as the JVM engines' JSON
    readers (Jackson) do: Spark's JSON reader and Flink's JSON format and ``IS JSON OBJECT`` all take
    ``{...}junk`` for the object (refusing it would take a second full parse of every message)."""
    try:
        decoded, _ = _DECODER.raw_decode(line, _JSON_SPACE.match(line).end())
    except (ValueError, RecursionError):
        decoded = None
    if isinstance(decoded, dict):
        return decoded
    text = line.strip(" ")  # SQL's TRIM and Spark's trim remove spaces only
    if len(line) > MAX_RECORD_BYTES:
        code = "oversized"
    elif text.startswith("{") and not text.endswith("}"):
        code = "truncated_line"
    else:
        code = "unparseable"
    return Violation(code, None, ALL_CODES[code])


def record_size(message: dict[str, Any]) -> int:
    """Characters of the contract's fields as text (what ``oversized`` measures)."""
    names = cdr_fields()
    return sum(len(text) for k, v in message.items() if k in names and (text := value_text(v)) is not None)


def check_message(message: dict[str, Any], profile: Profile, ctx: Context,
                  record_type: str | None = None) -> Violation | None:
    """First violation of a decoded JSON object (steps 2-5 of the module's order), or None.

    ``record_type``: the type of the file or topic the record arrived in, when the reader knows it
    (the batch layer's folder); otherwise the record's own ``record_type`` chooses its rules."""
    if record_size(message) > MAX_RECORD_BYTES:
        return Violation("oversized", None, ALL_CODES["oversized"])
    rt = RECORD_TYPES.get(value_text(message.get("record_type")))  # type: ignore[arg-type]
    if rt is None or (record_type is not None and rt.name != record_type):
        return Violation("unknown_record_type", "record_type", ALL_CODES["unknown_record_type"])
    typed, wrong = coerce(message, rt)
    if wrong is not None:
        return wrong
    return check_record(typed, rules_for(rt, profile), ctx)


def check_line(line: str, profile: Profile, ctx: Context, record_type: str | None = None) -> Violation | None:
    """First violation of one JSON line or message (the module's order), or None when it is valid."""
    decoded = read_line(line)
    if isinstance(decoded, Violation):
        return decoded
    return check_message(decoded, profile, ctx, record_type)
