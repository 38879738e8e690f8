"""`make down` then `make up` keeps the data (named volumes); `make reset` deletes it. Runs last in
the suite (file order) because it restarts the stack the other tests share; it relies on nothing
they did: it writes its own marker first."""

from __future__ import annotations

import subprocess
import uuid

from tests.compose.conftest import compose


def _volumes() -> set[str]:
    out = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={compose.PROJECT}"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_down_and_up_keep_the_data_and_reset_deletes_it(container_stack):
    marker = uuid.uuid4().hex
    container_stack.hive("CREATE TABLE IF NOT EXISTS default.compose_lifecycle (marker STRING) STORED AS PARQUET")
    container_stack.hive(f"INSERT INTO default.compose_lifecycle VALUES ('{marker}')")
    container_stack.psql(f"CREATE TABLE IF NOT EXISTS compose_lifecycle (marker TEXT); "
                         f"INSERT INTO compose_lifecycle VALUES ('{marker}')")

    assert compose.main(["down"]) == 0
    assert not [s for s, st in container_stack.stack.containers().items() if st["status"] == "running"]
    # The services that hold the marker (PostgreSQL, HDFS, the metastore, the Thrift Server): the other
    # profiles restart the same way, and all of them would double this test's time.
    assert compose.main(["up", "--no-build", "--profiles", "batch"]) == 0
    assert (marker,) in container_stack.hive("SELECT marker FROM default.compose_lifecycle")   # HDFS + metastore
    assert (marker,) in container_stack.psql("SELECT marker FROM compose_lifecycle")         # PostgreSQL

    assert _volumes() >= {f"{compose.PROJECT}_postgres-data", f"{compose.PROJECT}_namenode-data"}
    assert compose.main(["reset", "--force"]) == 0
    assert _volumes() == set()
    assert not container_stack.stack.containers()
