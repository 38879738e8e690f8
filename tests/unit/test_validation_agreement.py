"""The same verdict in every engine: Python (the shared reference), Spark (the batch layer) and Flink
SQL (the speed layer) give each generated record the same code and field.

Hypothesis draws the records, for every record type: valid ones (every representation the engines
must accept alike), records broken by each rule the contract names (and by several at once, which
tests the order), records of random keys and values, and lines that are not records (cut, not
JSON, not an object, too long). The corpus is evaluated in one pass per engine: the lines go
through the batch layer's reader and tagger as JSON Lines files and through the detection job's SQL
as messages (tests/validation_engines.py), since a Spark session and a Flink job per example would
cost minutes. Disagreements are listed with the line and every engine's verdict.

Size: ``CDR_FUZZ_RECORDS`` records per record type (300 by default, in the unit suite; `make fuzz`
draws 10,000). Each kind of line is drawn from a fixed seed with no example database, so a run is
reproducible: the same code and the same command draw the same corpus (as derandomize would, with
a stream of its own per kind and type). Hypothesis also draws, now and then, constants it finds in
the project's loaded modules, so `make fuzz` and the unit suite (other modules loaded) draw
different corpora, and a change to the code can change them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import random
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from batch.testing import spark  # noqa: F401  (spark: session-scoped fixture)
from cdr.contract import RECORD_TYPES, FieldType, RecordType
from cdr.identifiers import luhn_check_digit
from cdr.profile import load_profile
from cdr.validation import (ALL_CODES, E164_PATTERN, FUTURE_TOLERANCE, INT32_RANGE, MAX_AGE, MAX_DURATION_S,
                            MAX_RECORD_BYTES, ROAMING_CELL_PATTERN, cdr_fields, msisdn_pattern, read_line, record_size,
                            value_text)
from tests.validation_engines import flink_verdicts, python_verdicts, spark_verdicts

pytestmark = pytest.mark.spark
RECORDS = int(os.environ.get("CDR_FUZZ_RECORDS", "300"))
PROFILE = load_profile()
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)
KNOWN_CELLS = [f"60301-{site:05d}-{sector}" for site in (1, 19, 250, 4021) for sector in (1, 2, 3)] + \
    ["60302-00007-1", "60303-10001-2", "16-FTTH-0001", "31-ADSL-0420", "09-LTEH-0013"]
# Codes every record type's corpus must reach (duplicate is the batch layer's cross-record check).
EXPECTED_CODES = set(ALL_CODES) - {"duplicate"}
ONLY_FOR = {"malformed_other_party": "other_party", "negative_duration": "duration_s",
            "duration_over_24h": "duration_s", "negative_bytes": "bytes_uplink"}


@dataclass(frozen=True)
class Spec:
    """One line to generate: a JSON object (rendered with the corpus's line key first) or a text."""

    record_type: str  # the type it was drawn for
    label: str  # what the strategy meant to make
    obj: dict | None = None
    text: str | None = None
    ascii: bool = True
    compact: bool = True
    cut: float | None = None  # cut the rendered object at this fraction of its length
    suffix: str = ""  # text after the rendered object
    transform: str | None = None  # one of TRANSFORMS, applied to the rendered object
    extra: str = ""  # the transform's argument (a duplicate key's "key": value)
    forms: int = 0  # seed of the JSON forms the renderer gives the values (see other_forms)


# --- values -------------------------------------------------------------------------------------

def ts_text(t: dt.datetime, digits: int = 0, zulu: bool = True) -> str:
    """ISO-8601 as the contract writes it, with 0-6 fraction digits, with or without Z."""
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if digits:
        text += "." + f"{t.microsecond:06d}"[:digits]
    return text + ("Z" if zulu else "")


def instants(low: dt.datetime, high: dt.datetime) -> st.SearchStrategy[dt.datetime]:
    span = int((high - low) / dt.timedelta(microseconds=1))
    return st.integers(0, span).map(lambda us: low + dt.timedelta(microseconds=us))


def time_texts(low: dt.datetime, high: dt.datetime) -> st.SearchStrategy[str]:
    return st.builds(ts_text, instants(low, high), st.integers(0, 6), st.booleans())


EARLIEST, LATEST = dt.datetime(1, 1, 1, tzinfo=UTC), dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
FUTURE, PAST = NOW + FUTURE_TOLERANCE, NOW - MAX_AGE
SECOND = dt.timedelta(seconds=2)
VALID_TIMES = time_texts(PAST + SECOND, FUTURE) | time_texts(NOW - dt.timedelta(days=3), NOW)


def digits(n: int) -> st.SearchStrategy[str]:
    """``n`` decimal digits (integers drawn and padded: much faster than from_regex)."""
    return st.integers(0, 10**n - 1).map(lambda v: f"{v:0{n}d}")


# Valid identifiers of the profile's numbering plan (the patterns of cdr.validation, built by hand;
# a test below checks them against those patterns).
MOBILE = st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(sorted(o.prefix for o in PROFILE.operators)),
                   digits(8))
FIXED = st.builds(lambda first, rest: first + rest, st.sampled_from("1234"),
                  digits(int(PROFILE.fixed["national_digits"]) - 1))
MSISDN = (MOBILE | FIXED).map(lambda national: PROFILE.country_code + national)
IMSI = digits(12).map(lambda msin: PROFILE.mcc + msin)
IMEI = digits(14).map(lambda body: body + str(luhn_check_digit(body)))
E164 = st.integers(10**7, 10**15 - 1).map(str)
ROAMING_CELL = st.builds(lambda plmn, site, sector: f"{plmn}-{site}-{sector}", digits(5) | digits(6), digits(5),
                         digits(1))
# A line holds no line break, nor a lone surrogate (not encodable: JSON can only escape one).
LINE_CHARS = st.characters(exclude_characters="\r\n", exclude_categories=("Cs",))
JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))


def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)


JSON_VALUES = st.recursive(JSON_SCALARS, _containers, max_leaves=6)


def other_forms(obj: dict, seed: int) -> dict:
    """``obj`` with about a fifth of its values in another JSON form the engines must read alike (every
    engine types a value from its text): a number or boolean as its text, a digit string as a number.
    Chosen by a seed at rendering, which costs Hypothesis one draw per record instead of one per value."""
    if not seed:
        return obj
    rng = random.Random(seed)
    out = {}
    for key, value in obj.items():
        if rng.random() < 0.2 and isinstance(value, (bool, int)):
            value = value_text(value)
        elif rng.random() < 0.2 and isinstance(value, str) and value.isascii() and value.isdigit() and value[0] != "0":
            value = int(value)
        out[key] = value
    return out


VISITED_PLMN = digits(5) | digits(6)
FORMS = st.integers(0, 2**32)
SPECIAL_VALUES = {
    "record_id": st.text(LINE_CHARS, min_size=1, max_size=24),
    "start_time": VALID_TIMES,
    "served_msisdn": MSISDN,
    "served_imsi": IMSI,
    "served_imei": IMEI,
    "other_party": E164,
    "visited_plmn": VISITED_PLMN,
    "duration_s": st.integers(0, MAX_DURATION_S),
    "bytes_uplink": st.integers(0, 10**18 - 1),
    "bytes_downlink": st.integers(0, 10**18 - 1),
    "mos": st.floats(1, 5) | st.integers(1, 5) | st.sampled_from(["4.2", "1e999", "-0.0", "00.5", "5E-1", "0.0000001"]),
    "sip_status": st.integers(100, 699),
    "message_length": st.integers(0, INT32_RANGE[1]),
    "apn": st.text(max_size=20),
}
BY_TYPE = {FieldType.STRING: st.text(max_size=20), FieldType.INT32: st.integers(*INT32_RANGE),
           FieldType.INT64: st.integers(-(10**18) + 1, 10**18 - 1),
           FieldType.FLOAT64: st.floats(allow_nan=False, allow_infinity=False), FieldType.BOOL: st.booleans()}


@functools.cache
def valid_value(name: str, roaming: bool) -> st.SearchStrategy:
    """A valid value of a CDR field (the strategy built once per field)."""
    f = next(f for rt in RECORD_TYPES.values() for f in rt.fields if f.name == name)
    if name == "cell_id":
        return ROAMING_CELL if roaming else st.sampled_from(KNOWN_CELLS)
    if name == "roaming":
        return st.just(roaming)
    if f.allowed:
        return st.sampled_from(f.allowed)
    return SPECIAL_VALUES[name] if name in SPECIAL_VALUES else BY_TYPE[f.type]


@st.composite
def valid_records(draw, rt: RecordType) -> dict:
    roaming = draw(st.integers(0, 3)) == 0  # a quarter roam
    rec = {}
    for f in rt.fields:
        if f.name == "record_type":
            rec[f.name] = rt.name
            continue
        if not f.required and draw(st.integers(0, 3)) == 0:
            if draw(st.booleans()):
                rec[f.name] = None
            continue  # absent
        rec[f.name] = draw(valid_value(f.name, roaming))
    return rec


# --- breaking one rule --------------------------------------------------------------------------

def _digits_changed(draw, value: str) -> str:
    """A digit string with one digit added, removed or replaced, or a character that is not a digit."""
    how = draw(st.sampled_from(["add", "drop", "letter", "plus", "newline", "space", "zero"]))
    at = draw(st.integers(0, len(value)))
    if how == "add":
        return value[:at] + draw(st.sampled_from("0123456789")) + value[at:]
    if how == "drop":
        return value[:at] + value[at + 1:] if value else "1"
    if how == "letter":
        return value[:at] + draw(st.sampled_from("OlaZ٣")) + value[at + 1:]
    if how == "plus":
        return "+" + value
    if how == "newline":
        return value + draw(st.sampled_from(["\n", "\r", "\r\n", "\u2028", "\x85"]))
    if how == "space":
        return draw(st.sampled_from([" ", "\t"])) + value
    return "0" + value[1:]


def _wrong_text(draw, t: FieldType) -> object:
    """A JSON value whose text does not type as ``t``."""
    common = ["", " ", "ten", "12O", "n/a", "0x1F", "null", "1.5.0", [1], {"v": 1}, "１２", "\udcb1"]
    by_type = {
        FieldType.INT32: ["+5", " 5", "5 ", "1e3", "12.0", 12.5, 1e3, "--1", str(INT32_RANGE[1] + 1), INT32_RANGE[0] - 1,
                          10**18, "9" * 19, True, "true", "5\n", "-"],
        FieldType.INT64: ["+5", "1e3", 12.5, 2.0, "9" * 19, 10**19, -(10**18), True, "5\n"],
        FieldType.FLOAT64: ["NaN", "Infinity", "1,5", ".5", "5.", "1e", "+1.0", True, "0x10", "1.0\n"],
        FieldType.BOOL: ["TRUE", "False", "yes", "no", 1, 0, "1", "t", "true "],
        FieldType.TIMESTAMP: ["yesterday", "2025-12-28 10:00:00", "2025-12-28T10:00:00+01:00", "2025-12-28T10:00Z",
                              "2025-12-28", "20251228T100000Z", 1735380000, 1735380000.5, "2025-02-30T00:00:00Z",
                              "2025-12-28T24:00:00Z", "2025-12-31T23:59:60Z", "2025-12-28T10:00:00.1234567Z",
                              "0000-01-01T00:00:00Z", "2025-13-01T00:00:00Z", "2025-12-28t10:00:00z",
                              "2025-12-28T10:00:00ZZ", " 2025-12-28T10:00:00Z", "2025-12-28T10:00:00Z\n"],
    }
    return draw(st.sampled_from(common + by_type.get(t, [])) | st.text(LINE_CHARS, max_size=8))


def _break(draw, rec: dict, rt: RecordType, code: str) -> dict:
    required = [f.name for f in rt.fields if f.required and f.name != "record_type"]
    if code == "missing_field":
        name = draw(st.sampled_from(required))
        if draw(st.booleans()):
            rec[name] = None
        else:
            rec.pop(name, None)
    elif code == "wrong_type":
        f = draw(st.sampled_from([f for f in rt.fields if f.type is not FieldType.STRING]))
        rec[f.name] = _wrong_text(draw, f.type)
    elif code == "invalid_value":
        f = draw(st.sampled_from([f for f in rt.fields if f.allowed and f.name != "record_type"]))
        value = draw(st.sampled_from([a.lower() if a != a.lower() else a.upper() for a in f.allowed]
                                     + [a + " " for a in f.allowed] + ["", "other", 4, True])
                     | st.text(max_size=6))
        rec[f.name] = value if value_text(value) not in f.allowed else "other"
    elif code == "malformed_msisdn":
        rec["served_msisdn"] = _malformed(draw, MSISDN)
    elif code == "malformed_other_party":
        rec["other_party"] = _malformed(draw, E164)
    elif code == "malformed_imsi":
        rec["served_imsi"] = draw(st.sampled_from(["208011234567890", "60301234567890", "6030112345678901"])) \
            if draw(st.booleans()) else _malformed(draw, IMSI)
    elif code == "invalid_imei":
        imei = draw(IMEI)
        rec["served_imei"] = draw(st.sampled_from([imei[:14] + str((int(imei[14]) + 1) % 10), imei[:14], imei + "0"])) \
            if draw(st.booleans()) else _digits_changed(draw, imei)
    elif code == "negative_duration":
        rec["duration_s"] = draw(st.integers(INT32_RANGE[0], -1))
    elif code == "duration_over_24h":
        rec["duration_s"] = draw(st.integers(MAX_DURATION_S + 1, INT32_RANGE[1]))
    elif code == "negative_bytes":
        rec[draw(st.sampled_from(["bytes_uplink", "bytes_downlink"]))] = draw(
            st.integers(-(10**18) + 1, -1))
    elif code == "timestamp_future":
        rec["start_time"] = draw(time_texts(FUTURE, FUTURE + 2 * SECOND) | time_texts(FUTURE, LATEST))
    elif code == "timestamp_past":
        rec["start_time"] = draw(time_texts(PAST - 2 * SECOND, PAST) | time_texts(EARLIEST, PAST))
    elif code == "unknown_cell":
        if draw(st.booleans()):
            rec["roaming"] = True
            rec["cell_id"] = draw(st.sampled_from(KNOWN_CELLS[:3] + ["", "20801-1234-1", "208011-12345-12"])
                                  | st.text(max_size=10)) if draw(st.booleans()) else _digits_changed(draw, draw(ROAMING_CELL))
        else:
            rec["roaming"] = False
            rec["cell_id"] = draw(st.sampled_from(["60301-99999-9", "", KNOWN_CELLS[0] + " ", KNOWN_CELLS[0].lower()])
                                  | ROAMING_CELL | st.text(max_size=10))
    elif code == "unknown_record_type":
        value = draw(st.sampled_from([None, "absent", "fax", "", "Voice", " voice", "voice\n", 5, True, ["voice"]])
                     | st.text(max_size=8))
        if value == "absent":
            rec.pop("record_type", None)
        else:
            rec["record_type"] = value
    elif code == "oversized":
        # Pad one field of the CDR contract (any type's) to near the limit, on either side of it.
        pad = draw(st.sampled_from(["record_id", "apn", "visited_plmn", "codec", "cell_id"]))
        rec.pop(pad, None)
        room = MAX_RECORD_BYTES - record_size(rec)
        rec[pad] = draw(st.sampled_from("xé€")) * max(1, room + draw(st.integers(-2, 3) | st.integers(4, 5000)))
    elif code == "roaming":
        rec["roaming"], rec["cell_id"] = True, draw(ROAMING_CELL)
        rec["visited_plmn"] = draw(VISITED_PLMN)
    else:
        raise ValueError(code)
    return rec


def _malformed(draw, valid: st.SearchStrategy[str]) -> object:
    value = draw(valid)
    return draw(st.sampled_from([_digits_changed(draw, value), int(value[1:]) if value[1:].isdigit() else 0,
                                 value[: len(value) // 2], "", "abc", value + value]) | st.text(max_size=16))


def _codes_for(rt: RecordType) -> list[str]:
    names = set(rt.field_names)
    return [c for c in ["missing_field", "wrong_type", "invalid_value", "malformed_msisdn", "malformed_other_party",
                        "malformed_imsi", "invalid_imei", "negative_duration", "duration_over_24h", "negative_bytes",
                        "timestamp_future", "timestamp_past", "unknown_cell", "unknown_record_type", "oversized",
                        "roaming"] if ONLY_FOR.get(c, "record_id") in names]


@st.composite
def broken_records(draw, rt: RecordType, codes: tuple[str, ...]) -> Spec:
    """A valid record broken by the first of ``codes`` and, drawn, by more of them (which tests the order)."""
    rec = draw(valid_records(rt))
    chosen = [codes[0]] + draw(st.lists(st.sampled_from(codes), max_size=2)) if len(codes) > 1 else [codes[0]]
    for code in chosen:
        rec = _break(draw, rec, rt, code)
    return Spec(rt.name, "+".join(chosen), obj=rec, ascii=draw(st.booleans()), compact=draw(st.booleans()),
                forms=draw(FORMS))


@st.composite
def valid_specs(draw, rt: RecordType) -> Spec:
    return Spec(rt.name, "valid", obj=draw(valid_records(rt)), ascii=draw(st.booleans()), compact=draw(st.booleans()),
                forms=draw(FORMS))


@st.composite
def random_records(draw, rt: RecordType) -> Spec:
    """Random values under the contract's keys (and others), sometimes over a valid record."""
    base = draw(valid_records(rt)) if draw(st.booleans()) else {"record_type": rt.name}
    keys = st.sampled_from(list(cdr_fields())) | st.text(max_size=8)
    base.update(draw(st.dictionaries(keys, JSON_VALUES, max_size=6)))
    return Spec(rt.name, "random values", obj=base, ascii=draw(st.booleans()))


@st.composite
def lines_that_are_not_records(draw, rt: RecordType) -> Spec:
    rec = draw(valid_records(rt))
    kind = draw(st.sampled_from(["cut", "text", "json", "junk after", "not json", "long"]))
    if kind == "cut":
        return Spec(rt.name, "cut", obj=rec, cut=draw(st.floats(0.0, 0.999)))
    if kind == "junk after":
        return Spec(rt.name, "junk after", obj=rec, suffix=draw(st.text(LINE_CHARS, min_size=1, max_size=6)))
    if kind == "long":
        text = draw(st.sampled_from(["z", "{", "[", " "])) * (MAX_RECORD_BYTES + draw(st.integers(-2, 3)))
        return Spec(rt.name, "long", text=text)
    if kind == "json":
        value = draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
        return Spec(rt.name, "json not an object", text=json.dumps(value))
    if kind == "not json":
        transform = draw(st.sampled_from(sorted(TRANSFORMS)))
        extra = ""
        if transform == "duplicate key":
            # Not record_id: a repeated id would be the batch layer's cross-record duplicate.
            key = draw(st.sampled_from(sorted(set(rec) - {"record_id"}) + ["record_type"]))
            extra = f"{json.dumps(key)}: {json.dumps(draw(JSON_SCALARS))}"
        return Spec(rt.name, transform, obj=rec, transform=transform, extra=extra, forms=draw(FORMS))
    text = draw(st.text(LINE_CHARS, max_size=40))
    return Spec(rt.name, "text", text=text)


# Lines that are JSON only by a reader's leniency, or JSON in an unusual layout: from a rendered object.
TRANSFORMS = {
    "single quotes": lambda line, _: line.replace('"', "'"),
    "NaN": lambda line, _: line[:-1] + ', "mos": NaN}',
    "Infinity": lambda line, _: line[:-1] + ', "mos": -Infinity}',
    "trailing comma": lambda line, _: line[:-1] + ",}",
    "in an array": lambda line, _: "[" + line + "]",
    "brace first": lambda line, _: "{" + line,
    "twice": lambda line, _: line + line,
    "comment": lambda line, _: "/* cdr */" + line,
    "unquoted key": lambda line, _: line.replace('"record_type"', "record_type"),
    "leading zero": lambda line, _: line.replace('"_line":', '"_line": 0', 1),
    "tabs": lambda line, _: line.replace(",", ",\t"),
    "spaces around": lambda line, _: "  \t" + line.replace('":', '" :') + " \t",
    "duplicate key": lambda line, extra: line[:-1] + ", " + extra + "}",
}


def categories(rt: RecordType) -> list[tuple[str, int, st.SearchStrategy[Spec]]]:
    """(name, weight, strategy) of each kind of line drawn for ``rt``: valid records, each rule
    broken (alone or with others), random records and lines that are not records."""
    codes = _codes_for(rt)
    out = [("valid", 4, valid_specs(rt)), ("random values", 3, random_records(rt)),
           ("not records", 3, lines_that_are_not_records(rt))]
    out += [(code, 1, broken_records(rt, (code, *codes))) for code in codes]
    return out


def draw_specs(rt: RecordType, n: int) -> list[Spec]:
    """At least ``n`` specs of ``rt``, shared among the categories by weight, each drawn by Hypothesis
    from a seed of its own (fixed, and no example database: reproducible, see the module's doc)."""
    cats = categories(rt)
    total = sum(w for _, w, _ in cats)
    drawn: list[Spec] = []
    for name, weight, strategy in cats:
        share = -(-n * weight // total)  # rounded up: at least n in all
        batch: list[Spec] = []

        @seed(zlib.crc32(f"{rt.name}/{name}".encode()))
        @settings(max_examples=share, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def collect(spec: Spec) -> None:
            batch.append(spec)

        collect()
        drawn += batch[:share]
    return drawn


# --- the corpus ---------------------------------------------------------------------------------

@dataclass
class Corpus:
    specs: list[Spec]
    lines: list[str] = field(default_factory=list)
    spark_types: list[str] = field(default_factory=list)  # the type whose file each line is in


def render(specs_: list[Spec]) -> Corpus:
    """Lines from specs: objects get the line key first and a record_id no other line has (the batch
    layer would tag a second one ``duplicate``, a cross-record check the speed layer does not make)."""
    from tests.validation_engines import LINE_KEY

    corpus, seen = Corpus(specs_), set()
    for i, spec in enumerate(specs_):
        if spec.obj is None:
            line = spec.text
        else:
            obj = dict(spec.obj)
            rid = value_text(obj.get("record_id"))
            if rid is not None and rid in seen:
                obj["record_id"] = rid = f"{rid}~{i}"
            seen.add(rid)
            line = json.dumps({LINE_KEY: i, **other_forms(obj, spec.forms)}, ensure_ascii=spec.ascii, allow_nan=False,
                              separators=(",", ":") if spec.compact else (", ", ": "))
            if not spec.ascii and not line.isascii():
                try:
                    line.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate in a value: only its \u escape can be written
                    line = json.dumps({LINE_KEY: i, **other_forms(obj, spec.forms)}, allow_nan=False)
            if spec.cut is not None:
                line = line[:max(1, int(len(line) * spec.cut))]
            if spec.transform is not None:
                line = TRANSFORMS[spec.transform](line, spec.extra)
            line += spec.suffix
        corpus.lines.append(line)
        # A record goes into its own type's file, as the generator writes it; anything else into
        # the file of the type it was drawn for (as bronze lands a topic's messages).
        decoded = read_line(line)
        own = value_text(decoded.get("record_type")) if isinstance(decoded, dict) else None
        corpus.spark_types.append(own if own in RECORD_TYPES else spec.record_type)
    return corpus


@pytest.fixture(scope="module")
def verdicts(spark, tmp_path_factory):  # noqa: F811  (spark: the fixture imported above)
    times = {}
    start = time.monotonic()
    corpus = render([spec for rt in RECORD_TYPES.values() for spec in draw_specs(rt, RECORDS)])
    times["generate"] = time.monotonic() - start
    start = time.monotonic()
    python = python_verdicts(corpus.lines, KNOWN_CELLS, NOW)
    times["python"] = time.monotonic() - start
    start = time.monotonic()
    spark_ = spark_verdicts(spark, corpus.lines, corpus.spark_types, KNOWN_CELLS, NOW,
                            tmp_path_factory.mktemp("spark"))
    times["spark"] = time.monotonic() - start
    start = time.monotonic()
    flink = flink_verdicts(corpus.lines, KNOWN_CELLS, NOW, tmp_path_factory.mktemp("flink"))
    times["flink"] = time.monotonic() - start
    return corpus, python, spark_, flink, times


def objects_in_array(line: str) -> int:
    """How many objects a line that is a JSON array holds (0 for any other line)."""
    try:
        value, _ = json.JSONDecoder().raw_decode(line, len(line) - len(line.lstrip(" \t\n\r")))
    except (ValueError, RecursionError):
        return 0
    return sum(isinstance(v, dict) for v in value) if isinstance(value, list) else 0


def _disagreements(corpus, python, spark_, flink) -> tuple[list[str], int]:
    """Lines whose verdicts differ, and how many Flink rows were objects inside JSON arrays.

    A message that is a JSON array gets its own verdict from the raw twin in Flink, as in the other
    engines; but Flink's JSON format also reads each object inside it as a message (it has no option
    to turn this off: docs/streaming.md, "Validation"). Those extra rows are counted, not compared."""
    out, element_rows, in_arrays = [], 0, 0
    for i, line in enumerate(corpus.lines):
        got, objects = flink[i], objects_in_array(line)
        in_arrays += objects
        if objects and python[i] in got and len(got) - 1 <= objects:
            element_rows += len(got) - 1
            got = [python[i]]
        if not (got == [python[i]] and spark_[i] == python[i]):
            shown = line if len(line) < 300 else f"{line[:150]}...({len(line)} characters)...{line[-60:]}"
            out.append(f"line {i} ({corpus.specs[i].record_type}, {corpus.specs[i].label}): {shown!r}\n"
                       f"    python {python[i]}  spark {spark_[i]}  flink {flink[i]}")
    element_rows += len(flink[-1])  # objects inside arrays without the line key match no line
    if element_rows > in_arrays:
        out += [f"{element_rows} Flink rows beyond the messages, more than the {in_arrays} objects inside arrays: "
                f"{flink[-1][:10]}"]
    return out, element_rows


def test_the_three_engines_give_every_record_the_same_code_and_field(verdicts, capsys):
    corpus, python, spark_, flink, times = verdicts
    bad, element_rows = _disagreements(corpus, python, spark_, flink)
    per_type = Counter(spec.record_type for spec in corpus.specs)
    agreeing = len(corpus.lines) - sum(1 for d in bad if d.startswith("line "))
    with capsys.disabled():
        print(f"\nvalidation agreement: {len(corpus.lines)} records ("
              + ", ".join(f"{name} {per_type[name]}" for name in RECORD_TYPES) + "), "
              f"{agreeing / len(corpus.lines):.2%} agree ({agreeing}); "
              + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in times.items())
              + f", total {sum(times.values()):.1f} s; {element_rows} extra Flink rows for objects inside JSON arrays")
    assert not bad, f"{len(bad)} disagreement(s):\n" + "\n".join(bad[:30])


def test_the_corpus_reaches_every_code_for_every_record_type(verdicts):
    corpus, python, _, _, _ = verdicts
    reached = {name: {code for spec, (code, _) in zip(corpus.specs, python) if spec.record_type == name}
               for name in RECORD_TYPES}
    for name, rt in RECORD_TYPES.items():
        expected = {c for c in EXPECTED_CODES if ONLY_FOR.get(c, "record_id") in rt.field_names} | {None}
        assert expected <= reached[name], (name, expected - reached[name])


def test_the_valid_identifiers_drawn_match_the_rules_patterns():
    import re

    from cdr.validation import IMEI_PATTERN

    @settings(max_examples=200, derandomize=True, database=None, deadline=None)
    @given(MSISDN, IMSI, IMEI, E164, ROAMING_CELL)
    def check(msisdn, imsi, imei, e164, cell):
        assert re.fullmatch(msisdn_pattern(PROFILE), msisdn)
        assert re.fullmatch(rf"^{PROFILE.mcc}[0-9]{{12}}$", imsi)
        assert re.fullmatch(IMEI_PATTERN, imei) and luhn_check_digit(imei[:14]) == int(imei[14])
        assert re.fullmatch(E164_PATTERN, e164)
        assert re.fullmatch(ROAMING_CELL_PATTERN, cell)

    check()
