"""Superset configuration of the container stack (mounted at /app/pythonpath, on Superset's path).

Everything secret comes from the environment that compose/bi.yaml passes in; compose refuses to
start without SUPERSET_SECRET_KEY and POSTGRES_PASSWORD, so there is no fallback value here.
"""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
# Superset's own metadata lives in the stack's PostgreSQL (database created by compose/postgres/).
SQLALCHEMY_DATABASE_URI = (
    f"postgresql+psycopg2://{os.environ['POSTGRES_USER']}:{os.environ['POSTGRES_PASSWORD']}"
    f"@{os.environ.get('POSTGRES_HOST', 'postgres')}:5432/{os.environ['SUPERSET_DB']}"
)
# No Redis in this stack: the in-process cache is enough for one Superset worker.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache"}
FEATURE_FLAGS = {"DASHBOARD_RBAC": True}
