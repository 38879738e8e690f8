"""The one Spark configuration every Spark application of the platform uses.

Batch jobs, notebooks, tests and the Spark Thrift Server all see the same Hive tables:
Spark's built-in Hive client (local metastore mode) keeps the catalogue in PostgreSQL and
the table data under the warehouse directory on HDFS. PostgreSQL rather than Derby so that
several Spark applications can use the metastore at the same time.

    from stack.spark import session
    spark = session("daily-kpis")
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from cdr.settings import Settings, get_settings
from stack.paths import StackPaths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_conf(settings: Settings | None = None) -> dict[str, str]:
    """Spark properties that attach an application to the stack's metastore and warehouse."""
    settings = settings or get_settings()
    pg, hdfs, ip = settings.postgres, settings.hdfs, settings.stack.bind_ip
    metastore_driver = StackPaths.from_settings(settings).jar_group("spark-metastore")
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": f"{hdfs.uri}{settings.hive.warehouse_dir}",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:postgresql://{ip}:{pg.port}/{pg.metastore_db}",
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "spark.hadoop.javax.jdo.option.ConnectionUserName": pg.user,
        # The stack creates the schema before the Thrift Server's first start (stack.services.hive);
        # DataNucleus still creates its own SEQUENCE_TABLE on first use.
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        # Hive 2.3's client pushes DATE partition filters to the metastore as SQL that fails on
        # PostgreSQL; with this, Spark lists the partitions and filters them itself instead.
        "spark.sql.hive.metastorePartitionPruningFallbackOnException": "true",
        # HDFS clients choose the replication of the files they write; the stack has 2 DataNodes.
        "spark.hadoop.dfs.replication": str(hdfs.replication),
        # The JVM's classpath is fixed at launch, so the JDBC driver goes on it there.
        "spark.driver.extraClassPath": f"{metastore_driver}/*",
        # Executors write the serving layer's views over JDBC (serving.publish); on a cluster they
        # find the same jars at the same place (one image).
        "spark.executor.extraClassPath": f"{metastore_driver}/*",
        "spark.driver.bindAddress": ip,
        "spark.driver.host": ip,
    }


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package (without importing it)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pyspark is not installed in this environment (use .venvs/core)")
    return Path(next(iter(spec.submodule_search_locations)))


def spark_defaults_file() -> dict[str, str]:
    """The properties of $SPARK_CONF_DIR/spark-defaults.conf, if there is one.

    That file is where an environment overrides the local stack's values (the container stack
    writes its addresses there); ``session`` lets it win, as spark-submit would without --conf.
    """
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    path = Path(conf_dir) / "spark-defaults.conf" if conf_dir else None
    if path is None or not path.is_file():
        return {}
    properties = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([^#\s][^\s=]*)(?:\s*=\s*|\s+)(.*)", line.strip())
        if match:
            properties[match.group(1)] = match.group(2).strip()
    return properties


def check_reachable(conf: dict[str, str], timeout_s: float = 3.0) -> None:
    """The metastore's database and the warehouse's NameNode accept connections, else one clear
    error now: Spark's Hive client would retry for two minutes and print Java stack traces."""
    from stack.probes import require_port

    wanted = {"the Hive metastore's PostgreSQL": re.search(r"//([^/:]+):(\d+)/", conf.get(
                  "spark.hadoop.javax.jdo.option.ConnectionURL", "")),
              "the HDFS NameNode": re.match(r"hdfs://([^/:]+):(\d+)", conf.get("spark.sql.warehouse.dir", ""))}
    for name, address in wanted.items():
        if address is not None:
            require_port(name, address.group(1), int(address.group(2)),
                         "is the stack up? (cdr stack status; make up-local, or make up)", timeout_s)


def session(app_name: str, master: str = "local[2]", extra_conf: dict[str, str] | None = None) -> SparkSession:
    """A SparkSession with Hive support on the stack's shared metastore (checked reachable first)."""
    from pyspark.sql import SparkSession

    settings = get_settings()
    # The Spark UI binds to SPARK_LOCAL_IP (all interfaces when unset).
    os.environ.setdefault("SPARK_LOCAL_IP", settings.stack.bind_ip)
    builder = SparkSession.builder.appName(app_name).master(master)
    # Builder settings beat spark-defaults.conf, so the file's overrides are applied here.
    conf = {**spark_conf(settings), **spark_defaults_file(), **(extra_conf or {})}
    check_reachable(conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()
