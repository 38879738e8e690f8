"""Superset (BI), optional: `cdr stack up --with superset` (or `make bi`).

Runs from its own virtual environment (settings.superset.venv, requirements/superset.txt) with
the container stack's configuration, init script and dashboards (compose/superset/), so both
stacks serve the same dashboards from the same files.

Its metadata database is `superset` in the stack's PostgreSQL rather than SQLite: the container
stack does the same (one configuration file for both), PostgreSQL already runs, and SQLite's
single writer lock does not suit a multi-threaded web server. The secret key and the admin
password come from SUPERSET_SECRET_KEY and SUPERSET_ADMIN_PASSWORD; without them a development
stack generates them once into its state folder (see ``secret_files``), and any other
environment refuses to start.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cdr.errors import ServiceUnavailable
from stack.paths import SUPERSET_FILES
from stack.probes import http_get
from stack.process import ProcessSpec, tail
from stack.secrets import service_secret
from stack.services.base import Endpoint, Service
from stack.services.postgres import connect

SECRET_KEY_ENV = "SUPERSET_SECRET_KEY"
ADMIN_PASSWORD_ENV = "SUPERSET_ADMIN_PASSWORD"
# Chart queries run in the web server's threads; Hive queries on a cold Thrift Server take a while.
WEB_THREADS = 8
REQUEST_TIMEOUT_S = 300


class Superset(Service):
    name = "superset"
    needs_java = False
    optional = True

    @property
    def secret_files(self) -> dict[str, Path]:
        """Where a development stack keeps the secrets it generated (mode 0600)."""
        return {SECRET_KEY_ENV: self.dir / "secret_key", ADMIN_PASSWORD_ENV: self.dir / "admin_password"}

    def secret(self, env_var: str) -> str:
        """A secret from the environment, else (development) the one generated into ``secret_files``."""
        return service_secret(env_var, self.secret_files[env_var], self.settings.environment)

    @property
    def url(self) -> str:
        return f"http://{self.settings.stack.bind_ip}:{self.settings.superset.port}"

    def _bin(self, program: str) -> Path:
        path = self.settings.superset.venv_dir / "bin" / program
        if not path.exists():
            raise ServiceUnavailable(f"{path} not found: install Superset's environment with `make setup`")
        return path

    def _env(self) -> dict[str, str]:
        """The environment compose/superset/superset_config.py and init.sh read, for this stack."""
        s, ip = self.settings, self.settings.stack.bind_ip
        pg = s.postgres
        return {
            "PATH": f"{self._bin('superset').parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLASK_APP": "superset.app:create_app()",  # for the `superset` CLI, as the official image sets it
            "SUPERSET_CONFIG_PATH": str(SUPERSET_FILES / "superset_config.py"),
            "SUPERSET_HOME": str(self.dir / "home"),  # Superset's own data folder (default ~/.superset)
            SECRET_KEY_ENV: self.secret(SECRET_KEY_ENV),
            "POSTGRES_USER": pg.user,
            "POSTGRES_HOST": ip,
            "POSTGRES_PORT": str(pg.port),
            "SUPERSET_DB": s.superset.metadata_db,
            "SUPERSET_HIVE_URI": f"hive://{ip}:{s.hive.thrift_port}/default",
            "SUPERSET_SERVING_URI": f"postgresql+psycopg2://{pg.user}@{ip}:{pg.port}/{pg.serving_db}",
        }

    def prepare(self) -> None:
        """The metadata database, then the one-shot init of both stacks (compose/superset/init.sh):
        migrate it, set up roles, create or update the admin, import the dashboards of the repository.
        Idempotent; runs before every start, and on demand (`cdr stack superset-init`) while Superset runs."""
        (self.dir / "home").mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        with connect(self.settings) as conn:
            db = self.settings.superset.metadata_db
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                conn.execute(f'CREATE DATABASE "{db}"')
        env = {
            **os.environ,
            **self._env(),
            "SUPERSET_ADMIN_USER": self.settings.superset.admin_user,
            ADMIN_PASSWORD_ENV: self.secret(ADMIN_PASSWORD_ENV),
            "SUPERSET_DASHBOARDS": str(SUPERSET_FILES / "dashboards"),
        }
        env.pop("POSTGRES_PASSWORD", None)  # the local PostgreSQL trusts its user on loopback
        log_path = self.paths.log("superset-init")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            done = subprocess.run(["sh", str(SUPERSET_FILES / "init.sh")], stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env, cwd=self.dir)  # fmt: skip
        if done.returncode != 0:
            raise ServiceUnavailable(f"the Superset init failed; last lines of {log_path}:\n{tail(log_path, 20)}")

    def processes(self) -> list[ProcessSpec]:
        ip, port = self.settings.stack.bind_ip, self.settings.superset.port
        argv = [
            str(self._bin("gunicorn")),
            "--bind", f"{ip}:{port}",
            "--workers", "1", "--worker-class", "gthread", "--threads", str(WEB_THREADS),
            "--timeout", str(REQUEST_TIMEOUT_S),
            "--worker-tmp-dir", str(self.dir / "tmp"),  # also the identity marker
            "superset.app:create_app()",
        ]  # fmt: skip
        marker = str(self.dir / "tmp")
        return [ProcessSpec("superset", argv, ports=[port], env=self._env(), cwd=self.dir, marker=marker)]

    def probe(self) -> None:
        http_get(f"{self.url}/health")

    def endpoints(self) -> list[Endpoint]:
        from_env = bool(os.environ.get(ADMIN_PASSWORD_ENV))
        password = f"${ADMIN_PASSWORD_ENV}" if from_env else str(self.secret_files[ADMIN_PASSWORD_ENV])
        return [
            Endpoint("Superset", f"http://127.0.0.1:{self.settings.superset.port}"),
            Endpoint("Superset login", f"user {self.settings.superset.admin_user}, password in {password}"),
        ]
