"""The bronze landing job: every topic into partitioned Parquet on HDFS, exactly once.

Run by ``cdr stream start`` through ``flink run -py`` on the stack's session cluster. Pure SQL
(no Python UDF), so records never leave the JVM; see streaming/flink/bronze.py for the tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyflink.table import TableEnvironment

REPO_ROOT = Path(__file__).resolve().parents[2]
JOB_NAME = "cdr-bronze"


def build(t_env: TableEnvironment, group_id: str) -> None:
    from cdr.settings import get_settings
    from streaming.flink import bronze

    settings = get_settings()
    t_env.execute_sql(bronze.source_ddl(settings, group_id))
    statements = t_env.create_statement_set()
    for table, (topic, rt, path) in bronze.bronze_tables(settings).items():
        t_env.execute_sql(bronze.sink_ddl(table, rt, path))
        statements.add_insert_sql(bronze.insert_sql(table, topic, rt))
    statements.execute()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=JOB_NAME)
    parser.add_argument("--group-id", default=JOB_NAME)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--checkpoint-interval", required=True, help="e.g. '10 s' (settings: checkpoint_interval_s)")
    args = parser.parse_args(argv)

    from streaming.flink import streaming_environment

    # Files are committed when a checkpoint completes: the interval is the landing's latency.
    t_env = streaming_environment(JOB_NAME, args.parallelism, args.checkpoint_interval)
    build(t_env, args.group_id)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    main(sys.argv[1:])
