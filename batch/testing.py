"""A Spark session without the stack (unit tests, benchmark) and whole-DataFrame equality."""

from __future__ import annotations

import os

import pytest


def local_session(master: str = "local[1]", shuffle_partitions: int = 1, driver_memory: str = "1g"):
    """A Spark session without the stack (in-memory catalogue), UI off, UTC, with the settings the
    chain needs. Defaults (local[1], one shuffle partition) keep unit tests fast and deterministic.
    The default parallelism is the master's cores, as in `cdr batch run`: it also sets how many
    splits a file scan makes (and so how many files a write leaves), and the benchmark measures
    what the CLI runs (with 8, the 1 M chain took about 10 % longer)."""
    from pyspark.sql import SparkSession

    from batch.jobs import SPARK_CONF

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return (SparkSession.builder.config(map=SPARK_CONF).master(master).appName("cdr-batch-local")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.catalogImplementation", "in-memory")
            .getOrCreate())


@pytest.fixture(scope="session")
def spark():
    return local_session()


def assert_frames_equal(actual, expected) -> None:
    """Whole-DataFrame equality (schema and rows, any row order).

    chispa rather than pyspark.testing.assertDataFrameEqual: the latter imports pyspark.pandas,
    which does not load with the pandas version pinned for the generator."""
    from chispa import assert_df_equality

    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
