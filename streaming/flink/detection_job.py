"""The detection job: Kafka -> parse/validate/pseudonymise -> alerts, live KPIs, dead letters.

Run by ``cdr stream start`` through ``flink run -py`` on the stack's session cluster. Arguments
come from the client (``--cells`` reference file, ``--key-file`` with the pseudonymisation key,
a 0600 file the client writes and this script deletes once read into the UDF).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.udf import udf

REPO_ROOT = Path(__file__).resolve().parents[2]
JOB_NAME = "cdr-detection"


def build(t_env: TableEnvironment, key: bytes, cells: str, group_id: str) -> None:
    from cdr.settings import get_settings
    from streaming.flink import ddl
    from streaming.flink.rules import ALERT_COLUMNS, detect, kpis_per_cell, kpis_per_service
    from streaming.flink.schema import EVENT_NAMES, PARSED_ROW
    from streaming.flink.udfs import CountAlert, ParseMessage

    settings = get_settings()
    for statement in (ddl.kafka_source(settings, group_id), ddl.dead_letter_sink(settings), ddl.alerts_sink(settings),
                      ddl.kpi_cell_sink(settings), ddl.kpi_service_sink(settings)):
        t_env.execute_sql(statement)
    t_env.create_temporary_function("parse_message", udf(ParseMessage(key, cells), result_type=PARSED_ROW))
    t_env.create_temporary_function("count_alert", udf(CountAlert(), result_type=DataTypes.STRING()))
    t_env.create_temporary_view("parsed", t_env.sql_query(
        "SELECT topic, `partition`, `offset`, payload, event_time, parse_message(payload) AS p FROM cdr_messages"))
    events = t_env.sql_query(
        "SELECT event_time, " + ", ".join(f"p.{n} AS {n}" for n in EVENT_NAMES) + " FROM parsed WHERE p.ok")
    statements = t_env.create_statement_set()
    t_env.create_temporary_view("alerts_found", detect(t_env, events))
    statements.add_insert("alerts_sink", t_env.sql_query(
        "SELECT count_alert(alert_id, scenario) AS alert_id, " + ", ".join(ALERT_COLUMNS[1:]) + " FROM alerts_found"))
    statements.add_insert("kpi_cell_sink", kpis_per_cell(t_env, events))
    statements.add_insert("kpi_service_sink", kpis_per_service(t_env, events))
    statements.add_insert("dead_letter", t_env.sql_query(
        "SELECT topic, `partition`, `offset`, p.code, p.field, p.reason, payload, CURRENT_TIMESTAMP"
        " FROM parsed WHERE NOT p.ok"))
    statements.execute()


def stage_packages(target: Path) -> Path:
    """A directory holding only our packages, shipped to the Python workers. (Shipping a package
    directory itself would put its modules at top level, where cdr/profile.py shadows the
    standard library's profile module.)"""
    import shutil

    shutil.rmtree(target, ignore_errors=True)
    for package in ("cdr", "streaming"):
        shutil.copytree(REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=JOB_NAME)
    parser.add_argument("--cells", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--group-id", default=JOB_NAME)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--checkpoint-interval", default="10 s")
    args = parser.parse_args(argv)
    key_file = Path(args.key_file)
    key = key_file.read_bytes()
    key_file.unlink(missing_ok=True)

    from streaming.flink import streaming_environment

    t_env = streaming_environment(JOB_NAME, args.parallelism, args.checkpoint_interval, **{
        # A partition with nothing to read (all of it consumed before a restore) must not hold the
        # watermark back for ever; but a short timeout declares partitions stalled by a leader change
        # idle while a backlog is read, the watermark runs ahead and their records are dropped as late.
        "table.exec.source.idle-timeout": "60 s",
        # Python UDF bundles: small enough for alert latency, large enough for throughput.
        "python.fn-execution.bundle.time": "200",
        "python.fn-execution.bundle.size": "20000",
    })
    t_env.add_python_file(str(stage_packages(Path(args.key_file).parent / "cdr-python")))
    build(t_env, key, args.cells, args.group_id)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    main(sys.argv[1:])
