"""Keyed pseudonymisation in Spark: HMAC-SHA256 built from Spark's own sha2 on binary columns.

The key never appears in a query plan: its HMAC pads (cdr.pseudonym.hmac_pads) travel as a
broadcast one-row DataFrame joined to the data, so plans, logs and UIs show only column names.
The result equals ``cdr.pseudonym.pseudonymise`` (the speed layer's function) byte for byte.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch.frames import local_frame
from cdr.contract import RecordType
from cdr.pseudonym import hmac_pads

IPAD, OPAD = "_ipad", "_opad"


def pads_frame(spark: SparkSession, key: bytes) -> DataFrame:
    ipad, opad = hmac_pads(key)
    schema = T.StructType([T.StructField(IPAD, T.BinaryType()), T.StructField(OPAD, T.BinaryType())])
    return local_frame(spark, [(bytearray(ipad), bytearray(opad))], schema)


def canonical(value: Column) -> Column:
    """E.164 digits without '+', or the 15 digits of an IMSI/IMEI (as cdr.pseudonym.canonical)."""
    return F.regexp_replace(F.trim(value), r"^\+", "")


def hmac_hex(value: Column) -> Column:
    """lower hex HMAC-SHA256 of ``value``; needs the pad columns joined in."""
    inner = F.unhex(F.sha2(F.concat(F.col(IPAD), F.encode(canonical(value), "UTF-8")), 256))
    return F.when(value.isNotNull(), F.sha2(F.concat(F.col(OPAD), inner), 256))


def pseudonymise_columns(df: DataFrame, columns: list[str], pads: DataFrame) -> DataFrame:
    """Replace each of ``columns`` by its pseudonym, in place (same names, same order)."""
    with_pads = df.crossJoin(F.broadcast(pads))
    return with_pads.select(*[hmac_hex(F.col(c)).alias(c) if c in columns else F.col(c) for c in df.columns])


def identifier_columns(rt: RecordType) -> list[str]:
    return [f.name for f in rt.identifier_fields]
