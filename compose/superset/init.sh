#!/bin/sh
# One-shot Superset init: migrate the metadata database, create the admin from the environment,
# set up roles, register the platform's two databases and import the dashboards kept in
# compose/superset/dashboards/ (Superset export ZIPs). Every step is safe to run again.
set -eu
superset db upgrade
# create-admin fails when the user exists; that is the expected state on a re-run.
superset fab create-admin --username "$SUPERSET_ADMIN_USER" --password "$SUPERSET_ADMIN_PASSWORD" \
  --firstname Admin --lastname CDR --email "${SUPERSET_ADMIN_EMAIL:-admin@example.org}" \
  || echo "admin user $SUPERSET_ADMIN_USER already exists"
superset init
superset set-database-uri --database_name "CDR warehouse (Hive)" --uri "hive://spark-thrift:10000/default"
superset set-database-uri --database_name "CDR serving (PostgreSQL)" \
  --uri "postgresql+psycopg2://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres:5432/${SERVING_DB}"
found=0
for bundle in /app/dashboards/*.zip; do
  [ -f "$bundle" ] || continue
  found=$((found + 1))
  superset import-dashboards --path "$bundle" --username "$SUPERSET_ADMIN_USER"
done
echo "Superset ready; $found dashboard bundle(s) imported from compose/superset/dashboards/"
