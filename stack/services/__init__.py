"""The services of the local stack, in dependency (start) order."""

from __future__ import annotations

from cdr.settings import Settings
from stack.paths import StackPaths
from stack.services.base import Service
from stack.services.flink import Flink
from stack.services.hdfs import Hdfs
from stack.services.hive import Hive
from stack.services.kafka import Kafka
from stack.services.monitoring import Monitoring
from stack.services.postgres import Postgres
from stack.services.superset import Superset

# Start order: the Thrift Server needs PostgreSQL (metastore) and HDFS (warehouse); Prometheus
# goes last of the default services because its readiness probe wants every other service's
# metrics endpoint up. Superset (optional) reads PostgreSQL and the Thrift Server, so it follows.
SERVICE_TYPES: tuple[type[Service], ...] = (Postgres, Hdfs, Kafka, Hive, Flink, Monitoring, Superset)


def all_services(settings: Settings, paths: StackPaths) -> list[Service]:
    return [service_type(settings, paths) for service_type in SERVICE_TYPES]
