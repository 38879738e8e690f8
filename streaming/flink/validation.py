"""The shared data-quality rules (cdr/validation.py) compiled to Flink SQL expressions.

The detection job reads CDR messages with Flink's JSON format, every contract field declared
STRING (a JSON number or boolean arrives as its text), so parsing costs one pass in Java and no
Python. This module turns the declared rules into SQL over those text columns: the typing
checks (``wrong_type``), then each ``Rule`` in evaluation order, giving the code and field of a
message's first violation exactly as ``cdr.validation.check_record`` (and the batch layer's Spark
interpreter) would. Messages the JSON format cannot read as an object at all are classified from
their raw text by ``unreadable_code``.

Flink's JSON format hides which JSON type a value had (``453`` and ``"453"`` both read "453"), so
every engine types a value from its text, by the shared grammar (``cdr.validation.TEXT_PATTERNS``):
a message gets the same verdict here as in the batch layer and the Python reference.
"""

from __future__ import annotations

from cdr.contract import RECORD_TYPES, FieldType, RecordType
from cdr.profile import Profile
from cdr.validation import (ALL_CODES, FIELD_SEP, INT32_RANGE, MAX_RECORD_BYTES, TEXT_PATTERNS, Rule, cdr_fields,
                            jvm_regex, rules_for)

from streaming.flink.ddl import quote

KNOWN_CELL = "known_cell"  # column the job adds: TRUE when the cell is in the cell reference


def _matches(column: str, pattern: str) -> str:
    """SQL: the text ``column`` matches the shared ``^...$`` pattern, as Python's re.fullmatch."""
    return f"REGEXP({column}, '{quote(jvm_regex(pattern))}')"


def typed(name: str, ftype: FieldType) -> str:
    """The text column ``name`` as its contract type; NULL when absent or not of that type."""
    c = f"`{name}`"
    if ftype is FieldType.STRING:
        return c
    ok = _matches(c, TEXT_PATTERNS[ftype])
    if ftype in (FieldType.INT32, FieldType.INT64):
        # BIGINT for both widths (sums in windows do not overflow); an INT32 beyond 32 bits does not type.
        in_range = f" AND TRY_CAST({c} AS BIGINT) BETWEEN {INT32_RANGE[0]} AND {INT32_RANGE[1]}" \
            if ftype is FieldType.INT32 else ""
        return f"CASE WHEN {ok}{in_range} THEN TRY_CAST({c} AS BIGINT) END"
    if ftype is FieldType.FLOAT64:
        return f"CASE WHEN {ok} THEN TRY_CAST({c} AS DOUBLE) END"
    if ftype is FieldType.BOOL:
        return f"CASE {c} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
    if ftype is FieldType.TIMESTAMP:
        # The cast resolves leniently (2025-02-30 reads 2025-02-28, 24:00 the next day): the time must
        # read back as it was written.
        ts = f"TRY_CAST(REPLACE(REPLACE({c}, 'T', ' '), 'Z', '') AS TIMESTAMP(6))"
        same = f"DATE_FORMAT({ts}, 'yyyy-MM-dd''T''HH:mm:ss') = SUBSTRING({c} FROM 1 FOR 19)"
        return f"CASE WHEN {ok} AND {same} THEN {ts} END"
    if ftype is FieldType.DATE:
        same = f"CAST(TRY_CAST({c} AS DATE) AS STRING) = {c}"
        return f"CASE WHEN {ok} AND {same} THEN TRY_CAST({c} AS DATE) END"
    raise ValueError(ftype)


def _luhn_ok(v: str, pattern: str) -> str:
    """15 digits whose last is the Luhn check digit of the first 14 (the rightmost body digit doubled)."""
    terms = []
    for i in range(14):
        d = f"CAST(SUBSTRING({v} FROM {i + 1} FOR 1) AS INT)"
        terms.append(f"(CASE WHEN {d} * 2 > 9 THEN {d} * 2 - 9 ELSE {d} * 2 END)" if (13 - i) % 2 == 0 else d)
    total = " + ".join(terms)
    return f"({_matches(v, pattern)} AND MOD(10 - MOD({total}, 10), 10) = CAST(SUBSTRING({v} FROM 15 FOR 1) AS INT))"


def _literal(value) -> str:
    return f"'{quote(value)}'" if isinstance(value, str) else str(value)


def typed_column(name: str) -> str:
    """The column ``typed_columns`` adds for a field: its value as its contract type."""
    return f"`_t_{name}`"


def _luhn_column(name: str) -> str:
    return f"`_luhn_{name}`"


def typed_columns(profile: Profile) -> str:
    """SELECT-list items typing every CDR field once (the rules then read the typed columns), and
    the Luhn check of the fields that have one (long arithmetic, also computed once)."""
    items = [f"{typed(name, ftype)} AS {typed_column(name)}" for name, ftype in cdr_fields().items()]
    luhn = sorted({(r.fields[0], r.param) for rt in RECORD_TYPES.values() for r in rules_for(rt, profile)
                   if r.kind == "luhn"})
    items += [f"{_luhn_ok(f'`{name}`', pattern)} AS {_luhn_column(name)}" for name, pattern in luhn]
    return ", ".join(items)


def _checks(rule: Rule, rt: RecordType, now: str) -> list[tuple[str, str]]:
    """(condition that breaks the rule, offending field) pairs, in the order check_record tries them."""
    k = rule.kind
    t = {f.name: typed_column(f.name) for f in rt.fields}
    if k == "required":
        return [(f"{t[f]} IS NULL", f) for f in rule.fields]
    if k == "min":
        return [(f"{t[f]} < {rule.param}", f) for f in rule.fields]
    f = rule.fields[0]
    v = t[f]
    if k == "known_cell":
        cell = f"COALESCE({v}, '')"
        return [(f"CASE WHEN {t['roaming']} THEN NOT {_matches(cell, rule.param)}"
                 f" ELSE NOT COALESCE({KNOWN_CELL}, FALSE) END", f)]
    if k == "allowed":
        broken = f"{v} NOT IN ({', '.join(_literal(a) for a in rule.param)})"
    elif k == "pattern":
        broken = f"NOT {_matches(v, rule.param)}"
    elif k == "luhn":
        broken = f"NOT {_luhn_column(f)}"
    elif k == "max":
        broken = f"{v} > {rule.param}"
    elif k == "not_after_ref":
        broken = f"{v} > TIMESTAMPADD(SECOND, {int(rule.param.total_seconds())}, {now})"
    elif k == "not_before_ref":
        broken = f"{v} < TIMESTAMPADD(SECOND, {-int(rule.param.total_seconds())}, {now})"
    else:
        raise ValueError(f"unknown rule kind {k!r}")
    # An absent optional field breaks no rule.
    return [(f"{v} IS NOT NULL AND {broken}", f)]


def _violations(rt: RecordType, profile: Profile, now: str) -> list[tuple[str, str, str]]:
    """(condition, code, field) of one record type: wrong types, then its rules, in order."""
    out = [(f"`{f.name}` IS NOT NULL AND {typed_column(f.name)} IS NULL", "wrong_type", f.name)
           for f in rt.fields if f.type is not FieldType.STRING]
    for rule in rules_for(rt, profile):
        out += [(cond, rule.code, field) for cond, field in _checks(rule, rt, now)]
    return out


def _merged_checks(profile: Profile, now: str) -> list[tuple[tuple[str, str, str], list[str]]]:
    """Every record type's checks in one list, each with the types it applies to, such that the
    checks of any one type keep their order: one flat CASE instead of one per type (the types
    share most rules, and generated code this size compiles and runs markedly faster flat)."""
    merged: list[tuple[tuple[str, str, str], list[str]]] = []
    for name, rt in RECORD_TYPES.items():
        previous = -1
        for check in _violations(rt, profile, now):
            at = next((i for i, (c, _) in enumerate(merged) if c == check), None)
            if at is None:
                at = previous + 1
                merged.insert(at, (check, []))
            elif at < previous:
                raise ValueError(f"the rules of {name} cannot share one order with the other types: {check}")
            merged[at][1].append(name)
            previous = at
    return merged


def violation(profile: Profile, now: str = "CAST(CURRENT_TIMESTAMP AS TIMESTAMP(6))") -> str:
    """SQL expression for a message's first violation as ``code`` or ``code|field`` (NULL: valid),
    over the JSON table's text columns, their ``typed_columns`` and ``known_cell``; ``now`` is the
    reference time. One expression, so each condition is evaluated once per message (split by
    ``code_of``/``field_of``)."""
    types = ", ".join(f"'{t}'" for t in RECORD_TYPES)
    # The size limit applies to the contract's fields (unknown keys are ignored, as in the batch layer).
    oversized = " + ".join(f"COALESCE(CHAR_LENGTH(`{f}`), 0)" for f in cdr_fields()) + f" > {MAX_RECORD_BYTES}"
    cases = [f"WHEN {oversized} THEN 'oversized'",
             f"WHEN `record_type` IS NULL OR `record_type` NOT IN ({types}) THEN 'unknown_record_type{FIELD_SEP}record_type'"]
    for (condition, code, field), applies in _merged_checks(profile, now):
        guard = "" if len(applies) == len(RECORD_TYPES) else \
            "`record_type` IN (" + ", ".join(f"'{t}'" for t in applies) + ") AND "
        cases.append(f"WHEN {guard}{condition} THEN '{code}{FIELD_SEP + field if field else ''}'")
    return "CASE " + " ".join(cases) + " END"


def code_of(violation_column: str) -> str:
    return f"SPLIT_INDEX({violation_column}, '{FIELD_SEP}', 0)"


def field_of(violation_column: str) -> str:
    return f"SPLIT_INDEX({violation_column}, '{FIELD_SEP}', 1)"


def unreadable_code(payload: str) -> str:
    """The code of a message that is not a JSON object (the JSON table cannot read it)."""
    return (f"CASE WHEN CHAR_LENGTH({payload}) > {MAX_RECORD_BYTES} THEN 'oversized'"
            f" WHEN TRIM({payload}) LIKE '{{%' AND TRIM({payload}) NOT LIKE '%}}' THEN 'truncated_line'"
            " ELSE 'unparseable' END")


def unreadable_sql(payload: str) -> str:
    """TRUE for a message that is not a JSON object: what the JSON table skips."""
    return f"({payload} IS NULL OR NOT ({payload} IS JSON OBJECT))"


def reason(code: str, field: str) -> str:
    """Readable reason from the shared catalogue: the code's description, then the field."""
    described = "CASE " + " ".join(f"WHEN {code} = '{c}' THEN '{quote(text)}'" for c, text in ALL_CODES.items()) \
        + f" ELSE {code} END"
    return f"CASE WHEN {field} IS NOT NULL THEN CONCAT({described}, ' (', {field}, ')') ELSE {described} END"
