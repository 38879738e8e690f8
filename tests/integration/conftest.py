"""Fixtures shared by the local stack's integration modules.

``batch_layer``: one labelled dataset through `cdr batch run` (a separate Spark application, as in
production) into its own root folder and database prefix, so the shared ``cdr_dw`` is not touched.
Built once per session for every module that needs a batched warehouse (the batch chain's tests,
the serving layer's), whichever runs first; its databases and files are removed at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

BATCH_START = dt.date(2026, 1, 5)
BATCH_DAYS = 2
BATCH_SUBSCRIBERS = 3000
BATCH_PREFIX = "it_"


def cdr(*args: str, timeout: int = 900) -> str:
    """`cdr ARGS` as a separate process with the development key; fails the test on a non-zero exit."""
    env = dict(os.environ, CDR_DEV_PSEUDONYM_KEY="1")
    done = subprocess.run([str(Path(sys.executable).parent / "cdr"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"cdr {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@dataclass(frozen=True)
class BatchLayer:
    data: Path          # the generated dataset (labels included)
    root: str           # the zones' root URI on HDFS
    prefix: str         # of the Hive databases
    log: str            # what `cdr batch run` printed
    start: dt.date = BATCH_START
    days: int = BATCH_DAYS

    @property
    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    def cdr_args(self) -> list[str]:
        return ["--root", self.root, "--db-prefix", self.prefix]


@pytest.fixture(scope="session")
def batch_layer(local_stack, tmp_path_factory):
    from generator.dataset import GenerateOptions, generate_dataset
    from tests.integration.thrift import query

    data = generate_dataset(GenerateOptions(out=tmp_path_factory.mktemp("batch-it") / "ds", subscribers=BATCH_SUBSCRIBERS,
                                            days=BATCH_DAYS, start=BATCH_START, seed=42)).out
    root = f"{local_stack.settings.hdfs.uri}/cdr-it/batch-{uuid.uuid4().hex[:8]}"
    log = cdr("batch", "run", "--input", str(data), "--dev-key", "--root", root, "--db-prefix", BATCH_PREFIX)
    layer = BatchLayer(data, root, BATCH_PREFIX, log)
    yield layer
    from serving import store

    with store.connect(local_stack.settings) as conn:  # the run published its days: take them back out
        for day in layer.dates:
            store.unpublish(conn, day)
    for db in ("cdr_raw", "cdr_clean", "cdr_ops", "cdr_dw"):
        query(local_stack, f"DROP DATABASE IF EXISTS {BATCH_PREFIX}{db} CASCADE")
    hdfs = next(s for s in local_stack.services if s.name == "hdfs")
    hdfs._webhdfs("DELETE", root.removeprefix(local_stack.settings.hdfs.uri), "DELETE", recursive="true")
