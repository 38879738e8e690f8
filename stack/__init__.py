"""The local stack: every service of the platform as plain processes on 127.0.0.1.

`cdr stack install | up | down | status | logs | bench` (see ``stack.cli``). Spark
applications get the shared Hive metastore configuration from ``stack.spark``.
"""
