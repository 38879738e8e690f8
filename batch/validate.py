"""The Spark interpreter of the shared data-quality rules (cdr/validation.py), and deduplication.

Rules are not re-declared here: each declared ``Rule`` kind is translated into a Spark column
expression, and a record's code is the first rule it breaks, exactly as ``check_record`` does.
Rows are tagged, never dropped: ``_code`` is null for a clean record, a parse code, ``duplicate``
for a repeated record_id, or the first broken rule's code; ``_field`` names the offending field.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdr.contract import RecordType
from cdr.validation import ALL_CODES, FIELD_SEP, Rule, jvm_regex

from batch.read import PARSE_CODE, RAW_JSON, SOURCE_FILE, raw_record

CODE, FIELD = "_code", "_field"
_SEP = FIELD_SEP  # between a rule's code and its field in first_violation (neither contains it)
KNOWN_CELL = "_known_cell"


def _luhn_ok(v: Column, pattern: str) -> Column:
    """15 digits whose last is the Luhn check digit of the first 14 (Spark's own luhn_check)."""
    return v.rlike(jvm_regex(pattern)) & F.call_function("luhn_check", v)


def violating_field(rule: Rule, reference_time: dt.datetime) -> Column:
    """Name of the field breaking ``rule`` (a string column), or null when the rule holds."""
    k, f = rule.kind, rule.fields[0]
    v = F.col(f)

    def when(broken: Column, field: str = f) -> Column:
        return F.when(broken, F.lit(field))

    if k == "required":
        return F.coalesce(*[when(F.col(g).isNull(), g) for g in rule.fields])
    if k == "known_cell":
        roaming_ok = F.coalesce(v, F.lit("")).rlike(jvm_regex(rule.param))
        return when(F.when(F.col("roaming") == F.lit(True), ~roaming_ok).otherwise(~F.col(KNOWN_CELL)))
    if k == "min":
        return F.coalesce(*[when(F.col(g) < rule.param, g) for g in rule.fields])
    if k == "allowed":
        broken = ~v.isin(*rule.param)
    elif k == "pattern":
        broken = ~v.rlike(jvm_regex(rule.param))
    elif k == "luhn":
        broken = ~_luhn_ok(v, rule.param)
    elif k == "max":
        broken = v > rule.param
    elif k == "not_after_ref":
        broken = v > F.lit(reference_time + rule.param)
    elif k == "not_before_ref":
        broken = v < F.lit(reference_time - rule.param)
    else:
        raise ValueError(f"unknown rule kind {k!r}")
    # An absent optional field breaks no rule (null comparisons are null, hence not true).
    return when(v.isNotNull() & broken)


def first_violation(rules: list[Rule], reference_time: dt.datetime) -> Column:
    """"code|field" of the first broken rule, or null. Each rule is evaluated once: concat is null
    while its field is, and coalesce stops at the first rule that is not."""
    return F.coalesce(*[F.concat(F.lit(f"{r.code}{_SEP}"), violating_field(r, reference_time)) for r in rules])


def with_known_cell(df: DataFrame, cells: DataFrame) -> DataFrame:
    """Flag whether each record's cell is in the cell reference (a broadcast join, rows kept)."""
    known = F.broadcast(cells.select(F.col("cell_id").alias("_ref_cell")).distinct()
                        .withColumn(KNOWN_CELL, F.lit(True)))
    joined = df.join(known, df["cell_id"] == known["_ref_cell"], "left").drop("_ref_cell")
    return joined.withColumn(KNOWN_CELL, F.coalesce(F.col(KNOWN_CELL), F.lit(False)))


def copy_numbers(raw: DataFrame, by: tuple[str, ...] = ()) -> DataFrame:
    """``raw`` with ``_copy``: each row's rank among the rows sharing its record_id (and ``by``), in
    (raw record, source file) order, so the first copy is 1.

    Only repeated ids need ordering, and they are rare (exact copies): their keys are counted on
    two narrow columns and broadcast, so the wide rows are never shuffled (a window over every
    row would sort them all). Rows without a record_id count as single."""
    keys = [*by, "record_id"]
    repeated = (raw.filter(F.col("record_id").isNotNull()).groupBy(*keys).count()
                .filter(F.col("count") > 1).select(*keys, F.lit(True).alias("_repeated")))
    flagged = raw.join(F.broadcast(repeated), keys, "left").select(*raw.columns, "_repeated")
    fields = [c for c in raw.columns if c not in (RAW_JSON, PARSE_CODE, SOURCE_FILE, *by)]
    first_copy = Window.partitionBy(*keys).orderBy(raw_record(fields), SOURCE_FILE)
    copies = flagged.filter(F.col("_repeated")).withColumn("_copy", F.row_number().over(first_copy))
    singles = flagged.filter(F.col("_repeated").isNull()).withColumn("_copy", F.lit(1))
    return copies.unionByName(singles).drop("_repeated")


def tag_records(raw: DataFrame, rules: list[Rule], cells: DataFrame, reference_time: dt.datetime,
                by: tuple[str, ...] = ()) -> DataFrame:
    """Every raw row with ``_code``/``_field``: parse problems first, then duplicates, then the rules.

    ``by`` names the partition columns (the landed ``date``) within which a repeated record_id is a
    duplicate, so that several days tagged at once give the rows each day tagged alone gives."""
    parsed = F.col(PARSE_CODE).isNull()
    df = with_known_cell(copy_numbers(raw, by), cells).withColumn(
        "_copy", F.when(parsed & F.col("record_id").isNotNull(), F.col("_copy")))
    violation = first_violation(rules, reference_time)
    tagged = df.withColumn("_v", F.when(~parsed, F.col(PARSE_CODE))
                           .when(F.col("_copy") > 1, F.lit(f"duplicate{_SEP}record_id"))
                           .otherwise(violation))
    return (tagged.withColumn(CODE, F.substring_index("_v", _SEP, 1))
            .withColumn(FIELD, F.when(F.col("_v").contains(_SEP), F.substring_index("_v", _SEP, -1)))
            .drop("_v", "_copy", KNOWN_CELL))


def reason(code: Column, field: Column) -> Column:
    """Readable reason: the code's description from the shared catalogue, with the field."""
    described = F.coalesce(*[F.when(code == c, F.lit(text)) for c, text in ALL_CODES.items()], code)
    return F.when(field.isNotNull(), F.concat(described, F.lit(" ("), field, F.lit(")"))).otherwise(described)


def clean_records(tagged: DataFrame, rt: RecordType, by: tuple[str, ...] = ()) -> DataFrame:
    return tagged.filter(F.col(CODE).isNull()).select(*rt.field_names, *by)


def raw_record_id(raw: Column) -> Column:
    """The record id of a line that did not parse: the JSON key's value, or the first CSV cell."""
    from_json = F.regexp_extract(raw, r'"record_id"\s*:\s*"([^"]*)"', 1)
    from_csv = F.regexp_extract(raw, r'^"?([A-Za-z0-9_-]+)"?,', 1)
    return F.coalesce(F.nullif(from_json, F.lit("")), F.nullif(from_csv, F.lit("")))


def quarantine_records(tagged: DataFrame, rt: RecordType, batch_id: str | Column,
                       by: tuple[str, ...] = ()) -> DataFrame:
    """Rejected rows (duplicates included) with the raw record, rule code, reason and lineage
    (and the partition columns ``by``); ``batch_id`` may be a column (one id per day)."""
    return tagged.filter(F.col(CODE).isNotNull()).select(
        F.lit(batch_id).alias("batch_id"),
        F.lit(rt.name).alias("record_type"),
        F.coalesce(F.col("record_id"), raw_record_id(raw_record(rt.field_names))).alias("record_id"),
        F.col(CODE).alias("rule_code"),
        reason(F.col(CODE), F.col(FIELD)).alias("reason"),
        raw_record(rt.field_names).alias("raw_record"),
        F.col(SOURCE_FILE).alias("source_file"),
        *by,
    )


def reconciliation(tagged: DataFrame, rt: RecordType, batch_id: str | Column, rejected_files: int | Column = 0,
                   by: tuple[str, ...] = ()) -> DataFrame:
    """One row per value of the partition columns ``by`` (one row without): records in = clean +
    quarantined + duplicates removed, counted in one pass. ``batch_id`` and ``rejected_files`` may
    be columns of ``by`` (one value per day)."""
    code = F.col(CODE)
    return tagged.groupBy(*by).agg(
        F.count(F.lit(1)).alias("records_in"),
        F.count(F.when(code.isNull(), 1)).alias("clean"),
        F.count(F.when(code.isNotNull() & (code != "duplicate"), 1)).alias("quarantined"),
        F.count(F.when(code == "duplicate", 1)).alias("duplicates"),
    ).select(
        F.lit(batch_id).alias("batch_id"), F.lit(rt.name).alias("record_type"),
        "records_in", "clean", "quarantined", "duplicates", *by,
        F.lit(rejected_files).alias("files_rejected"),
        (F.col("records_in") == F.col("clean") + F.col("quarantined") + F.col("duplicates")).alias("balanced"),
    )
