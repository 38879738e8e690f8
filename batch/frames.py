"""Small DataFrames made of rows held by the driver: dimensions, HMAC pads, reconciliation rows.

``spark.createDataFrame(list)`` keeps such rows in a Python RDD, so every query that reads the
frame starts Python workers for its slices: about a second each time on a 2-core machine, and
the chain read such frames in every clean write (the pads), the quarantine and each small
dimension. From pandas through Arrow, Spark holds the rows as a local relation in the JVM instead,
read like a literal table (and shown in plans by column names only).
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

# What the frames need of the session (part of batch.jobs.SPARK_CONF, which every batch session sets).
# Without fallback a conversion problem fails the job instead of silently taking the slow path.
ARROW_CONF = {"spark.sql.execution.arrow.pyspark.enabled": "true",
              "spark.sql.execution.arrow.pyspark.fallback.enabled": "false"}


def local_frame(spark: SparkSession, rows: Iterable[tuple | dict], schema: str | T.StructType) -> DataFrame:
    """A DataFrame of ``rows`` (tuples in the order of ``schema``'s fields, or dicts by field name)
    held by the JVM."""
    import pandas as pd

    struct = schema if isinstance(schema, T.StructType) else T._parse_datatype_string(schema)
    # object columns: values reach Arrow as given (an int column with a null stays an int column).
    names = struct.fieldNames()
    table = pd.DataFrame([tuple(r[n] for n in names) if isinstance(r, dict) else r for r in rows],
                         columns=names, dtype=object)
    return spark.createDataFrame(table, struct)
