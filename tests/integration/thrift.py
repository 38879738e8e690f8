"""Querying the warehouse the way BI tools do: PyHive through the Spark Thrift Server."""

from __future__ import annotations


def query(local_stack, sql: str, user: str = "tests") -> list[tuple]:
    from pyhive import hive

    with hive.connect(local_stack.settings.stack.bind_ip, local_stack.settings.hive.thrift_port, username=user) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()
