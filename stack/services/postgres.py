"""PostgreSQL: the Hive metastore database and the serving database, in our own cluster.

Debian's binaries run against a data directory inside the stack home; the system-wide
cluster Debian creates is never used. PostgreSQL refuses to run as root, so a root
caller runs it as an unprivileged system user (settings.postgres.os_user).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from cdr.errors import CdrError, ServiceUnavailable
from cdr.settings import Settings
from stack.probes import NotReady
from stack.process import ProcessSpec, tail
from stack.services.base import Endpoint, Service

if TYPE_CHECKING:
    import psycopg

# Only the development user, only over loopback or our private socket directory.
PG_HBA = """\
# Written by the local stack. Trust is acceptable here only because the server listens
# on 127.0.0.1 and its socket directory is private to the stack.
local all {user} trust
host  all {user} 127.0.0.1/32 trust
"""


def postgres_bin_dir() -> Path:
    """Debian's newest installed PostgreSQL server binaries."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise ServiceUnavailable("PostgreSQL server binaries not found in /usr/lib/postgresql: run `cdr stack install`")
    return versions[-1].parent


def ensure_os_user(name: str) -> pwd.struct_passwd:
    """Create the unprivileged system user that runs PostgreSQL for a root caller."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
        )
        return pwd.getpwnam(name)


def connect(settings: Settings, dbname: str = "postgres") -> psycopg.Connection:
    """An autocommit connection as the development user, over loopback."""
    import psycopg

    pg = settings.postgres
    return psycopg.connect(
        host=settings.stack.bind_ip, port=pg.port, user=pg.user, dbname=dbname, connect_timeout=3, autocommit=True
    )


class Postgres(Service):
    name = "postgres"
    needs_java = False

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    def _as_service_user(self) -> list[str]:
        """Command prefix that drops root to the service user (setpriv execs: the pid stays the server's)."""
        if os.geteuid() != 0:
            return []
        user = ensure_os_user(self.settings.postgres.os_user)
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]

    def prepare(self) -> None:
        prefix = self._as_service_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if prefix:
            user = pwd.getpwnam(self.settings.postgres.os_user)
            for path in (self.dir, self.data_dir, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
            self._check_reachable(prefix)
        self.data_dir.chmod(0o700)
        bin_dir = postgres_bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(prefix, bin_dir)
        (self.data_dir / "pg_hba.conf").write_text(PG_HBA.format(user=self.settings.postgres.user))
        if prefix:
            shutil.chown(self.data_dir / "pg_hba.conf", self.settings.postgres.os_user, self.settings.postgres.os_user)

    def _initdb(self, prefix: list[str], bin_dir: Path) -> None:
        log_path = self.paths.log("postgres-initdb")
        with log_path.open("ab") as log:
            created = subprocess.run(
                [*prefix, str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.settings.postgres.user,
                 "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.dir,
            )  # fmt: skip
        if created.returncode != 0:
            raise CdrError(f"initdb failed; last lines of {log_path}:\n{tail(log_path, 20)}")

    def _check_reachable(self, prefix: list[str]) -> None:
        """The service user must be able to reach the data directory through every parent."""
        probe = subprocess.run([*prefix, "test", "-w", str(self.data_dir)], capture_output=True)
        if probe.returncode != 0:
            raise CdrError(
                f"PostgreSQL runs as user {self.settings.postgres.os_user!r}, who cannot reach {self.data_dir}; "
                "make its parent directories traversable (chmod o+x) or set CDR_STACK__HOME to such a place"
            )

    def processes(self) -> list[ProcessSpec]:
        pg = self.settings.postgres
        argv = [
            *self._as_service_user(), str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir),
            "-p", str(pg.port),
            "-c", f"listen_addresses={self.settings.stack.bind_ip}",
            "-c", f"unix_socket_directories={self.socket_dir}",
            "-c", "shared_buffers=128MB",
            "-c", "max_connections=100",
        ]  # fmt: skip
        return [ProcessSpec("postgres", argv, ports=[pg.port], stop_signal=signal.SIGINT, marker=str(self.data_dir))]

    def probe(self) -> None:
        import psycopg

        try:
            with connect(self.settings) as conn:
                if conn.execute("SELECT 1").fetchone() != (1,):
                    raise NotReady("SELECT 1 returned something else")
        except psycopg.OperationalError as exc:
            raise NotReady(str(exc).strip().splitlines()[-1]) from None

    def after_ready(self) -> None:
        pg = self.settings.postgres
        with connect(self.settings) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for db in (pg.metastore_db, pg.serving_db):
                if db not in existing:
                    conn.execute(f'CREATE DATABASE "{db}"')

    def endpoints(self) -> list[Endpoint]:
        pg = self.settings.postgres
        return [Endpoint("PostgreSQL", f"postgresql://{pg.user}@127.0.0.1:{pg.port}/{pg.serving_db}")]
