#!/bin/sh
# One-shot Superset init of both stacks (the container stack's superset-init service, and the local
# stack before it starts Superset): migrate the metadata database, set up roles, then create or
# update the admin and import the platform's databases, datasets, charts and dashboards from
# compose/superset/dashboards/ (bootstrap.py). Every step is safe to run again.
#
# Environment: SUPERSET_ADMIN_USER, SUPERSET_ADMIN_PASSWORD, SUPERSET_HIVE_URI, SUPERSET_SERVING_URI,
# POSTGRES_PASSWORD (when the serving database needs one) and, optionally, SUPERSET_DASHBOARDS (the
# YAML tree; default: the container stack's mount). The two URIs default to the container stack's.
set -eu
here=$(dirname "$0")
superset db upgrade
superset init
SUPERSET_HIVE_URI="${SUPERSET_HIVE_URI:-hive://spark-thrift:10000/default}" \
SUPERSET_SERVING_URI="${SUPERSET_SERVING_URI:-postgresql+psycopg2://${POSTGRES_USER}@postgres:5432/${SERVING_DB}}" \
  python "$here/bootstrap.py" "${SUPERSET_DASHBOARDS:-/app/dashboards}"
