"""The SQL endpoint: Spark Thrift Server (HiveServer2 protocol) on the shared Hive metastore.

Runs from the pyspark package's own Spark distribution with the configuration of
``stack.spark`` written to ``spark/conf/spark-defaults.conf`` (SPARK_CONF_DIR), which other
``spark-submit`` users can point at too.
"""

from __future__ import annotations

import getpass
import logging
import os
import subprocess
import zipfile
from pathlib import Path

from cdr.errors import CdrError
from stack.java import classpath, java, java_home, require_jars
from stack.probes import NotReady
from stack.process import ProcessSpec, tail
from stack.services.base import Endpoint, Service
from stack.services.postgres import connect
from stack.spark import spark_conf, spark_home

THRIFT_SERVER_MAIN = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
SCHEMA_TOOL_MAIN = "org.datanucleus.store.schema.SchemaTool"
# The metastore schema of Spark's built-in Hive 2.3 client.
METASTORE_SCHEMA_VERSION = "2.3.0"


class Hive(Service):
    name = "hive"

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    def prepare(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        lines = "".join(f"{key} {value}\n" for key, value in spark_conf(self.settings).items())
        (self.conf_dir / "spark-defaults.conf").write_text(
            "# Written by the local stack from stack.spark.spark_conf(); edits are overwritten.\n" + lines
        )
        self._ensure_metastore_schema()

    def _ensure_metastore_schema(self) -> None:
        """Create every metastore table up front, once, with DataNucleus' SchemaTool.

        Left to datanucleus.schema.autoCreateAll alone, tables appear lazily on first use, and a
        Spark application can deadlock in PostgreSQL: its DDL connection (ALTER TABLE ... ADD
        FOREIGN KEY) waits for a lock held by its own open metastore transaction.
        """
        with connect(self.settings, self.settings.postgres.metastore_db) as conn:
            has_version = conn.execute("""SELECT to_regclass('public."VERSION"') IS NOT NULL""").fetchone()
            if has_version == (True,) and conn.execute('SELECT count(*) FROM "VERSION"').fetchone() != (0,):
                return
        schema_dir = self.dir / "metastore-schema"
        schema_dir.mkdir(parents=True, exist_ok=True)
        jars = spark_home() / "jars"
        with zipfile.ZipFile(next(jars.glob("hive-metastore-*.jar"))) as jar:
            (schema_dir / "package.jdo").write_bytes(jar.read("package.jdo"))  # the metastore's JDO mapping
        conf = spark_conf(self.settings)
        properties = {
            "javax.jdo.option.ConnectionURL": conf["spark.hadoop.javax.jdo.option.ConnectionURL"],
            "javax.jdo.option.ConnectionDriverName": conf["spark.hadoop.javax.jdo.option.ConnectionDriverName"],
            "javax.jdo.option.ConnectionUserName": conf["spark.hadoop.javax.jdo.option.ConnectionUserName"],
            # The local stack trusts loopback; the container stack's PostgreSQL asks for PGPASSWORD.
            "javax.jdo.option.ConnectionPassword": os.environ.get("PGPASSWORD") or "unused-trust-auth",
            # As Hive's ObjectStore configures DataNucleus, so names and id generation match.
            "datanucleus.identifierFactory": "datanucleus1",
            "datanucleus.rdbms.useLegacyNativeValueStrategy": "true",
            "datanucleus.storeManagerType": "rdbms",
        }
        props_file = schema_dir / "datanucleus.properties"
        props_file.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        argv = [
            java(self.settings), "-cp", classpath(jars, require_jars(self.paths.jar_group("spark-metastore"))),
            SCHEMA_TOOL_MAIN, "-create", "-api", "JDO", "-props", str(props_file), str(schema_dir / "package.jdo"),
        ]  # fmt: skip
        log_path = self.paths.log("hive-metastore-schema")
        with log_path.open("ab") as log:
            created = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if created.returncode != 0:
            raise CdrError(
                f"creating the Hive metastore schema failed; last lines of {log_path}:\n{tail(log_path, 20)}"
            )
        with connect(self.settings, self.settings.postgres.metastore_db) as conn:
            conn.execute(
                'INSERT INTO "VERSION" ("VER_ID", "SCHEMA_VERSION", "VERSION_COMMENT") VALUES (1, %s, %s)',
                (METASTORE_SCHEMA_VERSION, "Created by the CDR local stack (DataNucleus SchemaTool)"),
            )

    def processes(self) -> list[ProcessSpec]:
        hive, ip = self.settings.hive, self.settings.stack.bind_ip
        thrift_only = {
            "spark.ui.port": str(hive.thrift_ui_port),
            # Driver metrics in Prometheus format at <ui>/metrics/prometheus.
            "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
            "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
            "spark.sql.shuffle.partitions": "4",
            "spark.local.dir": str(self.dir / "tmp"),
        }
        argv = [
            str(spark_home() / "bin" / "spark-submit"),
            "--master", "local[2]",
            "--driver-memory", f"{hive.driver_memory_mb}m",
            "--name", "cdr-thriftserver",
            "--class", THRIFT_SERVER_MAIN,
        ]  # fmt: skip
        for key, value in thrift_only.items():
            argv += ["--conf", f"{key}={value}"]
        # spark-submit adds the primary resource "spark-internal" itself for the Thrift Server class.
        argv += [
            "--hiveconf", f"hive.server2.thrift.port={hive.thrift_port}",
            "--hiveconf", f"hive.server2.thrift.bind.host={ip}",
        ]  # fmt: skip
        env = {
            "SPARK_HOME": str(spark_home()),
            "SPARK_CONF_DIR": str(self.conf_dir),
            "JAVA_HOME": str(java_home(self.settings)),
            "SPARK_LOCAL_IP": ip,
        }
        return [
            ProcessSpec(
                "hive-thriftserver", argv, ports=[hive.thrift_port, hive.thrift_ui_port], env=env, cwd=self.dir,
                # In both spark-submit's and the JVM's command line (spark-submit execs java).
                marker=thrift_only["spark.local.dir"],
            )
        ]  # fmt: skip

    def probe(self) -> None:
        from pyhive import hive

        # Thrift logs every refused connection at ERROR level while the server starts.
        logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)
        try:
            with hive.connect(
                self.settings.stack.bind_ip, self.settings.hive.thrift_port, username=getpass.getuser()
            ) as conn:
                cursor = conn.cursor()
                cursor.execute("SELECT 1")
                row = cursor.fetchone()
        except Exception as exc:  # thrift/sasl raise many unrelated types while the port is not open yet
            raise NotReady(f"SELECT 1 through the Thrift server: {type(exc).__name__}: {exc}") from None
        if row != (1,):
            raise NotReady(f"SELECT 1 returned {row!r}")

    def endpoints(self) -> list[Endpoint]:
        hive = self.settings.hive
        return [
            Endpoint("SQL (HiveServer2 protocol)", f"hive://127.0.0.1:{hive.thrift_port}/default"),
            Endpoint("Thrift Server Spark UI", f"http://127.0.0.1:{hive.thrift_ui_port}"),
        ]
