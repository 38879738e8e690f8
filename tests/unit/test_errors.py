"""The CLI's error policy (cdr.errors, cdr.cli.main): engine exceptions become the documented
exit code and one readable line; tracebacks only with --debug. The exceptions are the engines'
own, raised by real failed calls where that is cheap (a closed port, a missing file)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from cdr.errors import BadInput, CdrError, DataLoss, ExitCode, ServiceUnavailable, classify, describe_unexpected


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # released on close: nothing listens there afterwards


def _raised(call) -> BaseException:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001: the test wants whatever the engine raises
        return exc
    raise AssertionError("the call did not fail")


def test_the_policy_classes_carry_their_exit_codes():
    assert [c.exit_code for c in (CdrError, BadInput, ServiceUnavailable, DataLoss)] == [2, 2, 3, 4]
    assert BadInput("x", "do y").hint == "do y"


def test_a_missing_file_is_bad_input_naming_the_path(tmp_path):
    known = classify(_raised(lambda: open(tmp_path / "nowhere.json")))
    assert isinstance(known, BadInput) and str(known) == f"{tmp_path / 'nowhere.json'}: No such file or directory"


def test_a_refused_connection_is_a_service_unavailable():
    import httpx
    import psycopg

    port = _closed_port()
    for exc in (_raised(lambda: socket.create_connection(("127.0.0.1", port), timeout=2)),
                _raised(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=2)),
                _raised(lambda: psycopg.connect(host="127.0.0.1", port=port, connect_timeout=2))):
        known = classify(exc)
        assert isinstance(known, ServiceUnavailable), (type(exc), known)
        assert known.exit_code == ExitCode.UNAVAILABLE


def test_spark_analysis_errors_are_classified_by_their_error_class():
    from pyspark.errors import AnalysisException

    missing = classify(AnalysisException(message="[PATH_NOT_FOUND] Path does not exist: file:/data/labels."))
    assert isinstance(missing, BadInput) and str(missing) == "Path does not exist: file:/data/labels."
    metastore = classify(AnalysisException(message="org.apache.hadoop.hive.ql.metadata.HiveException: "
                                                   "java.lang.RuntimeException: Unable to instantiate "
                                                   "org.apache.hadoop.hive.ql.metadata.SessionHiveMetaStoreClient"))
    assert isinstance(metastore, ServiceUnavailable)
    assert classify(AnalysisException(message="[DIVIDE_BY_ZERO] Division by zero.")) is None


def test_an_unclassified_error_is_described_with_its_causes():
    try:
        try:
            {}["start_time"]
        except KeyError as inner:
            raise RuntimeError("labels unreadable") from inner
    except RuntimeError as exc:
        assert classify(exc) is None
        assert describe_unexpected(exc) == ["RuntimeError: labels unreadable", "KeyError: 'start_time'"]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "cdr.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_the_cli_prints_one_line_and_the_exit_code_and_a_traceback_only_when_asked():
    done = _cli("generate", "--subscribers", "-5", "--out", "/tmp/never-written")
    assert (done.returncode, done.stderr) == (2, "error: --subscribers must be at least 100 (got -5)\n")
    for debug in (["--debug"], []):
        env = {} if debug else {"CDR_DEBUG": "1"}
        done = _cli(*debug, "generate", "--subscribers", "-5", "--out", "/tmp/never-written", **env)
        assert done.returncode == 1 and "Traceback" in done.stderr and "CdrError: --subscribers" in done.stderr


@pytest.mark.parametrize("args", [["nosuch"], ["generate", "--days", "many"]])
def test_usage_errors_stay_typer_s_exit_2(args):
    done = _cli(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_a_setting_out_of_range_is_bad_input_naming_it():
    done = _cli("produce", "--count", "1", "--subscribers", "100", CDR_KAFKA__CONNECT_TIMEOUT_S="-1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: setting kafka.connect_timeout_s = '-1': Input should be greater than 0\n")
    assert "Traceback" not in done.stderr
