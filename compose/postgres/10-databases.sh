#!/bin/sh
# PostgreSQL init (run once, on an empty data volume, by the postgres image's entrypoint):
# the databases of the platform, owned by the platform's user. Names come from compose/compose.yaml,
# which takes them from the same values as cdr/config/platform.toml.
set -eu
for db in "$METASTORE_DB" "$SERVING_DB" "$SUPERSET_DB"; do
  echo "creating database $db"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
