"""Reading operator files of any generator format with the contract schema.

Every row that reaches the reader is kept: rows that are not records of the file's type carry
their raw line and a code (``PARSE_CODE``), in the order of ``cdr.validation`` (steps 1-4): a
line that is not a record (``oversized``, ``truncated_line``, ``unparseable``), then a record
that is too large (``oversized``), of another or no record type (``unknown_record_type``) or with a
value that does not type (``wrong_type``), so that validation quarantines them instead of losing
them. Text formats are read as text and typed by the shared grammar (``TEXT_PATTERNS``), as the
speed layer types Kafka messages. Files that cannot be opened at all (a truncated Parquet footer,
an unreadable encoding) are returned separately, named, so one bad file never stops the others
from loading.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch.frames import local_frame
from cdr.contract import FieldType, RecordType, spark_schema
from cdr.validation import FIELD_SEP, MAX_RECORD_BYTES, TEXT_PATTERNS, cdr_fields, jvm_regex

CORRUPT = "_corrupt_record"
# Columns every reader adds to the contract's fields.
RAW_JSON = "_raw"            # the raw text line of a row that did not parse (else null: see raw_record)
PARSE_CODE = "_parse_code"   # null for a record of the file's type typed without loss, else "code" or "code|field"
SOURCE_FILE = "_source_file"
# Spark's JSON reader accepts more than JSON by default; the speed layer's reader and the shared
# reference (Python's json) do not, so neither does the batch layer.
JSON_OPTIONS = {"allowSingleQuotes": "false", "allowNonNumericNumbers": "false"}
_SPARK_TYPES = {FieldType.INT32: "int", FieldType.INT64: "bigint", FieldType.FLOAT64: "double",
                FieldType.DATE: "date"}


@dataclass(frozen=True)
class RejectedFile:
    path: str
    reason: str


def _with_lineage(df: DataFrame, fields: list[str], parse_code: Column, raw: Column) -> DataFrame:
    return df.select(
        *[F.col(f) for f in fields],
        raw.alias(RAW_JSON),
        parse_code.alias(PARSE_CODE),
        F.col("_metadata.file_path").alias(SOURCE_FILE),
    )


def raw_record(fields: list[str]) -> Column:
    """The record as it arrived: the raw line of a row that did not parse, else the JSON rendering
    of its typed fields. An expression, not a stored column: only the rows that need it (the
    quarantined and the repeated) pay for the rendering, and cached rows stay narrow."""
    rendered = F.to_json(F.struct(*[F.col(f) for f in fields]), {"ignoreNullFields": "false"})
    return F.coalesce(F.col(RAW_JSON), rendered)


def typed_text(text: Column, ftype: FieldType) -> Column:
    """A text value as its contract type by the shared grammar; null when it does not type
    (including a date or time that does not exist and an INT32 beyond 32 bits)."""
    if ftype is FieldType.STRING:
        return text
    if ftype is FieldType.BOOL:
        value = text == F.lit("true")
    elif ftype is FieldType.TIMESTAMP:
        # Always with its zone (UTC), so the session's time zone plays no part.
        value = F.concat(F.regexp_replace(text, "Z$", ""), F.lit("Z")).try_cast("timestamp")
    else:
        value = text.try_cast(_SPARK_TYPES[ftype])
    return F.when(text.rlike(jvm_regex(TEXT_PATTERNS[ftype])), value)


def _first(checks: list[tuple[Column, str]]) -> Column:
    """The code of the first broken check, or null."""
    (broken, code), *rest = checks
    out = F.when(broken, F.lit(code))
    for broken, code in rest:
        out = out.when(broken, F.lit(code))
    return out


def record_code(rt: RecordType, text: Callable[[str], Column], sized: list[str] | None = None,
                typing: bool = True) -> Column:
    """Code of a record that is not one of ``rt`` typed without loss (steps 2-4 of cdr.validation),
    or null: the text of the ``sized`` fields too long, another record type, a value that does not
    type (``typing``: ``text`` gives text columns, not typed ones)."""
    checks = []
    if sized is not None:
        size = sum((F.coalesce(F.char_length(text(f)), F.lit(0)) for f in sized), F.lit(0))
        checks.append((size > MAX_RECORD_BYTES, "oversized"))
    record_type = text("record_type")
    checks.append((record_type.isNull() | (record_type != F.lit(rt.name)), f"unknown_record_type{FIELD_SEP}record_type"))
    checks += [(text(f.name).isNotNull() & typed_text(text(f.name), f.type).isNull(), f"wrong_type{FIELD_SEP}{f.name}")
               for f in rt.fields if typing and f.type is not FieldType.STRING]
    return _first(checks)


def unreadable_line_code(line: Column, cut_json: bool) -> Column:
    """Code of a line that is not a record at all (step 1 of cdr.validation)."""
    checks = [(F.char_length(line) > MAX_RECORD_BYTES, "oversized")]
    if cut_json:
        checks.append((F.ltrim(line).startswith("{") & ~F.rtrim(line).endswith("}"), "truncated_line"))
    return F.coalesce(_first(checks), F.lit("unparseable"))


def read_parquet(spark: SparkSession, paths: list[str], rt: RecordType) -> DataFrame:
    """Parquet is typed by its writer: a row is a record unless its record type is not the file's
    (the raw record is rendered on demand). The size limit is a message's: it applies to lines."""
    fields = rt.field_names
    df = spark.read.schema(spark_schema(rt)).parquet(*paths)
    return _with_lineage(df, fields, record_code(rt, F.col, typing=False), F.lit(None).cast("string"))


def read_text(spark: SparkSession, paths: list[str], rt: RecordType, file_format: str) -> DataFrame:
    """CSV (with the contract's header) or JSON Lines, read line by line as text (PERMISSIVE mode)
    and typed by the shared grammar: a line that is not a record of ``rt``, or does not type,
    keeps its text and gets a code."""
    fields = rt.field_names
    if file_format == "csv":
        read_as = fields
        schema = T.StructType([T.StructField(f, T.StringType(), True) for f in read_as])
    elif file_format == "jsonl":
        read_as = list(cdr_fields())  # every CDR field: all of them count for the size limit
        schema = T.StructType([T.StructField(f, T.StringType(), True) for f in read_as])
    else:
        raise ValueError(f"unknown text format {file_format!r}")
    schema = schema.add(T.StructField(CORRUPT, T.StringType(), True))
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    lines = spark.read.text(paths).select(F.col("value"), F.col("_metadata.file_path").alias(SOURCE_FILE))
    line = F.col("value")
    if file_format == "csv":
        lines = lines.filter(~is_csv_header(line))
        parsed = F.from_csv(line, schema.simpleString(), options)
        # A line that does not split into the contract's cells is not CSV of this record type.
        unreadable = F.size(F.split(line, ",")) != len(fields)
    else:
        parsed = F.from_json(line, schema, {**options, **JSON_OPTIONS})
        unreadable = F.lit(False)
    rows = lines.select(line, F.col(SOURCE_FILE), parsed.alias("r"))
    unreadable = unreadable | F.col(f"r.{CORRUPT}").isNotNull() | F.col("r").isNull()
    code = F.when(unreadable, unreadable_line_code(line, cut_json=file_format == "jsonl")) \
        .otherwise(record_code(rt, lambda f: F.col(f"r.{f}"), read_as))
    rows = rows.select("*", code.alias(PARSE_CODE))
    ok = F.col(PARSE_CODE).isNull()
    return rows.select(
        *[F.when(ok, typed_text(F.col(f"r.{f.name}"), f.type)).alias(f.name) for f in rt.fields],
        F.when(~ok, line).alias(RAW_JSON),
        F.col(PARSE_CODE),
        F.col(SOURCE_FILE),
    )


def is_csv_header(line: Column) -> Column:
    return line.startswith('"record_id"') | line.startswith("record_id,")


def csv_header_problems(spark: SparkSession, paths: list[str], rt: RecordType) -> list[RejectedFile]:
    """Non-empty CSV files without the contract's header line (their cells would be misread)."""
    if not paths:
        return []
    expected = ",".join(f'"{f.name}"' for f in rt.fields)
    per_file = (spark.read.text(paths)
                .groupBy(F.col("_metadata.file_path").alias("path"))
                .agg(F.max(F.replace(F.col("value"), F.lit('"'), F.lit("")) == expected.replace('"', ""))
                     .alias("has_header"),
                     F.first(F.when(is_csv_header(F.col("value")) | ~F.col("value").rlike("^[A-Z][0-9]"),
                                    F.col("value")), ignorenulls=True).alias("first_text"))
                .collect())
    by_location = {_location(p): p for p in paths}
    return [RejectedFile(by_location.get(_location(r["path"]), r["path"]),
                         f"CSV header does not match the {rt.name} contract (got {r['first_text']!r})")
            for r in per_file if not r["has_header"]]


def _location(uri: str) -> str:
    """The path part of a URI: Spark reports file:/x for file:///x."""
    return re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(//[^/]*)?", "", uri)


def readable_parquet_files(spark: SparkSession, paths: list[str]) -> tuple[list[str], list[RejectedFile]]:
    """Split Parquet files into readable ones and rejected ones (footer unreadable), by name."""
    good, bad = [], []
    for path in paths:
        try:
            spark.read.parquet(path).schema  # reads the footer only
            good.append(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure rejects this one file
            first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            bad.append(RejectedFile(path, f"unreadable Parquet file: {first_line}"))
    return good, bad


def read_cdr(spark: SparkSession, paths: list[str], rt: RecordType,
             file_format: str) -> tuple[DataFrame, list[RejectedFile]]:
    """All readable rows of ``paths`` (files of one record type) and the files that could not be read."""
    if file_format == "parquet":
        good, rejected = readable_parquet_files(spark, paths)
        if not good:
            return empty_raw(spark, rt), rejected
        return read_parquet(spark, good, rt), rejected
    rejected = csv_header_problems(spark, paths, rt) if file_format == "csv" else []
    good = [p for p in paths if p not in {r.path for r in rejected}]
    if not good:
        return empty_raw(spark, rt), rejected
    return read_text(spark, good, rt, file_format), rejected


def empty_raw(spark: SparkSession, rt: RecordType) -> DataFrame:
    schema = spark_schema(rt)
    for name in (RAW_JSON, PARSE_CODE, SOURCE_FILE):
        schema = schema.add(T.StructField(name, T.StringType(), True))
    return local_frame(spark, [], schema)


def read_reference(spark: SparkSession, path: str, rt: RecordType, file_format: str) -> DataFrame:
    """Subscribers or cells (reference data, trusted: read strictly, a bad file fails the batch)."""
    reader = spark.read.schema(spark_schema(rt))
    if file_format == "parquet":
        return reader.parquet(path)
    if file_format == "csv":
        return reader.option("header", "true").option("mode", "FAILFAST").csv(path)
    return reader.option("mode", "FAILFAST").json(path)
