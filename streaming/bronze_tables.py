"""Hive tables over the bronze landing, registered through the Thrift server.

One external Parquet table per topic (``bronze_voice``, ..., ``bronze_subscribers``),
partitioned by date, and the view ``bronze_cdr`` over the columns every CDR type shares. Flink
commits files into date folders as records arrive; ``register`` (re)discovers the partitions,
so run it (``cdr stream tables``) before querying a new day.
"""

from __future__ import annotations

from cdr.settings import Settings
from streaming.flink.bronze import PARTITION_COLUMN, bronze_tables, columns

ALL_CDR_VIEW = "bronze_cdr"
# Flink SQL types of the bronze files -> Hive (and Spark SQL) column types.
HIVE_TYPES = {"STRING": "STRING", "INT": "INT", "BIGINT": "BIGINT", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN",
               "DATE": "DATE", "TIMESTAMP(3)": "TIMESTAMP", "TIMESTAMP(6)": "TIMESTAMP"}


def table_ddl(database: str, table: str, cols: list[tuple[str, str]], location: str) -> str:
    body = ",\n".join(f"  `{name}` {HIVE_TYPES[ftype]}" for name, ftype in cols)
    return (f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n{body}\n)\n"
            f"PARTITIONED BY (`{PARTITION_COLUMN}` STRING)\nSTORED AS PARQUET\nLOCATION '{location}'")


def view_ddl(settings: Settings) -> str:
    """Every CDR topic's table, on the columns all CDR types have."""
    tables = {name: rt for name, (_, rt, _) in bronze_tables(settings).items() if name != "bronze_subscribers"}
    shared = [name for name, _ in columns(next(iter(tables.values())))
              if all(name in dict(columns(rt)) for rt in tables.values())]
    select = ", ".join(f"`{c}`" for c in [*shared, PARTITION_COLUMN])
    db = settings.bronze.database
    union = "\nUNION ALL\n".join(f"SELECT {select} FROM `{db}`.`{name}`" for name in tables)
    return f"CREATE OR REPLACE VIEW `{db}`.`{ALL_CDR_VIEW}` AS\n{union}"


def statements(settings: Settings) -> list[str]:
    db = settings.bronze.database
    out = [f"CREATE DATABASE IF NOT EXISTS `{db}`"]
    for table, (_, rt, location) in bronze_tables(settings).items():
        out.append(table_ddl(db, table, columns(rt), location))
        out.append(f"MSCK REPAIR TABLE `{db}`.`{table}`")
    out.append(view_ddl(settings))
    return out


def register(settings: Settings) -> None:
    """Create the tables and the view if missing and pick up every date folder Flink has written."""
    from pyhive import hive

    with hive.connect(settings.stack.bind_ip, settings.hive.thrift_port, username="cdr-bronze") as conn:
        cursor = conn.cursor()
        for sql in statements(settings):
            cursor.execute(sql)


def refresh(settings: Settings, tables: list[str]) -> None:
    """Make the Thrift server list the tables' files again (it caches listings; files were replaced)."""
    from pyhive import hive

    with hive.connect(settings.stack.bind_ip, settings.hive.thrift_port, username="cdr-bronze") as conn:
        cursor = conn.cursor()
        for table in tables:
            cursor.execute(f"REFRESH TABLE `{settings.bronze.database}`.`{table}`")


def row_counts(settings: Settings) -> dict[str, int]:
    from pyhive import hive

    db = settings.bronze.database
    with hive.connect(settings.stack.bind_ip, settings.hive.thrift_port, username="cdr-bronze") as conn:
        cursor = conn.cursor()
        out = {}
        for table in [*bronze_tables(settings), ALL_CDR_VIEW]:
            cursor.execute(f"SELECT COUNT(*) FROM `{db}`.`{table}`")
            out[table] = cursor.fetchall()[0][0]
        return out


def remove(settings: Settings) -> None:
    """Drop the bronze tables and view (not their database: the batch layer's raw tables share it)
    and delete the landed files (the raw zone's copy of the stream)."""
    import getpass

    import httpx
    from pyhive import hive

    db = settings.bronze.database
    with hive.connect(settings.stack.bind_ip, settings.hive.thrift_port, username="cdr-bronze") as conn:
        cursor = conn.cursor()
        cursor.execute(f"DROP VIEW IF EXISTS `{db}`.`{ALL_CDR_VIEW}`")
        for table in bronze_tables(settings):
            cursor.execute(f"DROP TABLE IF EXISTS `{db}`.`{table}`")
    path = settings.bronze_uri.removeprefix(settings.hdfs.uri)
    response = httpx.delete(f"http://127.0.0.1:{settings.hdfs.namenode_http_port}/webhdfs/v1{path}",
                            params={"op": "DELETE", "recursive": "true", "user.name": getpass.getuser()}, timeout=60)
    response.raise_for_status()
