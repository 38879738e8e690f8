"""Hive tables of the local stack: written by one Spark application, queried over the Thrift server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

from tests.integration.thrift import query

pytestmark = pytest.mark.stack

# A separate Spark application (its own JVM) using the shared configuration, as a batch job would.
SPARK_WRITER = textwrap.dedent(
    """
    import sys
    from stack.spark import session

    db, table = sys.argv[1], sys.argv[2]
    spark = session("stack-test-writer", extra_conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"})
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {db}")
    rows = [(f"msisdn-{i}", i * 10, "2026-01-01" if i % 3 == 0 else "2025-12-31") for i in range(30)]
    frame = spark.createDataFrame(rows, "msisdn string, seconds int, day string")
    frame.write.mode("overwrite").partitionBy("day").format("parquet").saveAsTable(f"{db}.{table}")
    spark.stop()
    """
)


def _query(local_stack, sql: str) -> list[tuple]:
    return query(local_stack, sql, user="stack-test")


def write_partitioned_table(tmp_path, db: str, table: str) -> None:
    script = tmp_path / "spark_writer.py"
    script.write_text(SPARK_WRITER)
    subprocess.run([sys.executable, str(script), db, table], check=True, timeout=300, capture_output=True)


def test_partitioned_table_written_by_spark_is_queried_through_thrift_server(local_stack, tmp_path):
    db, table = "stack_tests", f"calls_{uuid.uuid4().hex[:8]}"
    write_partitioned_table(tmp_path, db, table)

    assert _query(local_stack, f"SHOW PARTITIONS {db}.{table}") == [("day=2025-12-31",), ("day=2026-01-01",)]
    per_day = _query(local_stack, f"SELECT day, count(*), sum(seconds) FROM {db}.{table} GROUP BY day ORDER BY day")
    # i in 0..29; every third row (10 of them, seconds 0+30+...+270) is on New Year's Day.
    assert per_day == [("2025-12-31", 20, 3000), ("2026-01-01", 10, 1350)]
    location = dict((row[0].strip(), row[1]) for row in _query(local_stack, f"DESCRIBE FORMATTED {db}.{table}"))
    expected = f"{local_stack.settings.hdfs.uri}{local_stack.settings.hive.warehouse_dir}/{db}.db/{table}"
    assert location["Location"] == expected


def test_spark_defaults_file_overrides_the_local_values(tmp_path, monkeypatch):
    """An environment's $SPARK_CONF_DIR/spark-defaults.conf wins over spark_conf() in session()."""
    from stack.spark import spark_defaults_file

    (tmp_path / "spark-defaults.conf").write_text(
        "# addresses of another environment\n"
        "spark.sql.warehouse.dir hdfs://namenode:8020/cdr/warehouse\n"
        "spark.driver.host=spark-thrift\n"
        "spark.hadoop.hive.metastore.uris   thrift://hive-metastore:9083\n"
    )
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert spark_defaults_file() == {
        "spark.sql.warehouse.dir": "hdfs://namenode:8020/cdr/warehouse",
        "spark.driver.host": "spark-thrift",
        "spark.hadoop.hive.metastore.uris": "thrift://hive-metastore:9083",
    }
    monkeypatch.delenv("SPARK_CONF_DIR")
    assert spark_defaults_file() == {}
