"""The CLI's error policy: what a failure is called, the exit code it ends with, and how an engine's
own exception (Spark, Py4J, Kafka, HTTP, PostgreSQL) becomes one readable line.

Exit codes (docs/operations.md lists them with the common errors and their fixes):

====  ===================  ==================================================================
0     ok
1     unexpected           a bug or an engine failure nobody classified: its cause is printed
2     bad input            arguments, files, folders, labels, names, configuration values
3     service unavailable  a service down or unreachable, a job not running, a port taken,
                           the platform not installed
4     data loss            records not delivered, a reconciliation that does not balance
5     below threshold      a quality gate failed: a score under --min-score
130   interrupted          Ctrl-C
====  ===================  ==================================================================
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    BAD_INPUT = 2
    UNAVAILABLE = 3
    DATA_LOSS = 4
    BELOW_THRESHOLD = 5
    INTERRUPTED = 130


class CdrError(Exception):
    """A user-facing failure: one line that says what is wrong, optionally a second with what to do."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class BadInput(CdrError):
    """Missing or malformed input: an argument, a file or folder, a label file, a name, a setting."""


class ServiceUnavailable(CdrError):
    """A service that is down or unreachable, a job that is not running, a port already taken."""

    exit_code = ExitCode.UNAVAILABLE


class DataLoss(CdrError):
    """Records that were not delivered or a reconciliation that does not balance."""

    exit_code = ExitCode.DATA_LOSS


class BelowThreshold(CdrError):
    """A quality gate that did not pass (a scenario's precision or recall under --min-score)."""

    exit_code = ExitCode.BELOW_THRESHOLD


def _java_class(exc: BaseException) -> tuple[str, str]:
    """A Py4JJavaError's Java exception class and message (its first line), else ('', '')."""
    java = getattr(exc, "java_exception", None)
    if java is None:
        return "", ""
    try:
        text = str(java.toString())
    except Exception:  # the JVM is gone: nothing more to learn from it
        return "", ""
    name, _, message = text.partition(": ")
    return name, message.splitlines()[0] if message else ""


def classify(exc: BaseException) -> CdrError | None:
    """The CdrError an engine's exception stands for, or None when it is not an expected failure.

    Matched by class name, so that this module imports none of the engines."""
    if isinstance(exc, CdrError):
        return exc
    names = {cls.__name__ for cls in type(exc).__mro__}
    module = type(exc).__module__ or ""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return BadInput(f"{exc.filename or exc}: {exc.strerror or 'not found'}", "check the path")
    if isinstance(exc, PermissionError):
        return BadInput(f"{exc.filename or exc}: permission denied", "check the path's owner and mode")
    if module.startswith("pydantic") and "ValidationError" in names and hasattr(exc, "errors"):
        problems = [f"{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}" for e in exc.errors()]
        return BadInput(f"setting {'; '.join(problems[:3])}",
                        "check cdr/config/platform.toml, the file in CDR_CONFIG and CDR_<SECTION>__<KEY> variables")
    if "AnalysisException" in names:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "PATH_NOT_FOUND" in text:
            return BadInput(text.replace("[PATH_NOT_FOUND] ", ""), "check the path (file:// for a local file)")
        if "SessionHiveMetaStoreClient" in text:
            return ServiceUnavailable("the Hive metastore is unreachable", "is the stack up? (cdr stack status)")
        if "TABLE_OR_VIEW_NOT_FOUND" in text or "SCHEMA_NOT_FOUND" in text:
            return BadInput(text, "has the batch layer run? (cdr batch run)")
        return None
    if "Py4JJavaError" in names:
        java, message = _java_class(exc)
        if java.endswith(("FileNotFoundException", "InvalidInputException")):
            return BadInput(message or java, "check the path")
        if java.endswith(("ConnectException", "NoRouteToHostException", "UnknownHostException")):
            return ServiceUnavailable(message or java, "is the stack up? (cdr stack status)")
        return None
    if "Py4JNetworkError" in names:
        return ServiceUnavailable("the Spark driver's JVM is gone", "see the Spark logs above; rerun with --debug")
    if isinstance(exc, ConnectionError) or names & {"ConnectError", "ConnectTimeout", "TTransportException"}:
        return ServiceUnavailable(f"a service is unreachable ({exc})", "is the stack up? (cdr stack status)")
    if module.startswith("psycopg") and "OperationalError" in names:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ServiceUnavailable(f"PostgreSQL: {first}", "is the stack up? (cdr stack status)")
    if "KafkaException" in names:
        return ServiceUnavailable(f"Kafka: {exc}", "are the brokers up? (cdr stack status)")
    return None


def describe_unexpected(exc: BaseException) -> list[str]:
    """Lines for an exception nobody classified: its type, its first line and its causes' (a
    Py4JJavaError's Java exception instead of its Java stack trace)."""
    lines = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(lines) < 4:
        seen.add(id(current))
        java, message = _java_class(current)
        if java:
            lines.append(f"{java}: {message}" if message else java)
        else:
            text = str(current).strip().splitlines()
            lines.append(f"{type(current).__name__}: {text[0]}" if text else type(current).__name__)
        current = current.__cause__ or current.__context__
    return lines
