"""Superset configuration of both stacks (SUPERSET_CONFIG_PATH names this file).

The container stack mounts it at /app/cdr/ (compose/bi.yaml passes the environment); the local
stack points at it here (stack/services/superset.py passes the environment). Secrets come only
from the environment: compose refuses to start without SUPERSET_SECRET_KEY and POSTGRES_PASSWORD,
the local stack generates a development key once (docs/bi.md), so there is no fallback here.
"""

import os

from sqlalchemy.engine import URL

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
# Superset's own metadata lives in the stack's PostgreSQL (database `superset`). The local stack's
# PostgreSQL trusts its user on loopback, so POSTGRES_PASSWORD is unset there.
SQLALCHEMY_DATABASE_URI = URL.create(
    "postgresql+psycopg2",
    username=os.environ["POSTGRES_USER"],
    password=os.environ.get("POSTGRES_PASSWORD") or None,
    host=os.environ.get("POSTGRES_HOST", "postgres"),
    port=int(os.environ.get("POSTGRES_PORT", "5432")),
    database=os.environ["SUPERSET_DB"],
).render_as_string(hide_password=False)
# No Redis in either stack: the in-process cache is enough for one Superset worker.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache"}
FEATURE_FLAGS = {"DASHBOARD_RBAC": True}
