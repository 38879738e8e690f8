"""`cdr`: the platform's single command-line entry point.

Each layer owns its sub-commands (``generator.cli``, ``stack.cli``, ...); this module only
mounts them, so `cdr --help` lists everything and each layer stays importable alone.
"""

from __future__ import annotations

import os
import sys

import typer

from cdr import __version__
from cdr.errors import ExitCode, classify, describe_unexpected

DEBUG_ENV = "CDR_DEBUG"

app = typer.Typer(
    name="cdr",
    help="Telecom CDR data platform: generate CDRs, run the local stack, batch and streaming jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _mount() -> None:
    from batch.cli import app as batch_app
    from cdr.contract_cli import app as contract_app
    from generator.cli import generate
    from serving.cli import app as serving_app
    from stack.cli import app as stack_app
    from streaming.cli import produce_app, stream_app, topics_app

    app.command("generate", help="Generate a labelled synthetic CDR dataset.")(generate)
    app.add_typer(stack_app, name="stack", help="Run the platform's services as local processes.")
    app.add_typer(contract_app, name="contract", help="Export the data contract (docs, JSON Schema, DDL).")
    app.add_typer(batch_app, name="batch", help="Batch layer: raw -> clean -> cdr_dw on HDFS/Hive, scoring.")
    app.add_typer(topics_app, name="topics", help="Kafka topics of the speed layer (declared in configuration).")
    app.add_typer(produce_app, name="produce", help="Stream CDRs (or subscriber profiles) into Kafka.")
    app.add_typer(stream_app, name="stream", help="Speed layer: Flink jobs on the local cluster, scoring.")
    app.add_typer(serving_app, name="serving", help="Serving layer: batch and speed views merged in PostgreSQL.")


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help=f"Show the traceback of a failure (or set {DEBUG_ENV}=1)."),
) -> None:
    if debug:
        os.environ[DEBUG_ENV] = "1"
    if version:
        typer.echo(__version__)
        raise typer.Exit()


_mount()


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def main() -> None:
    """Run the CLI under the error policy of ``cdr.errors``: usage errors are Typer's (exit 2); an
    expected failure, or an engine exception that stands for one, is one or two lines on stderr and
    its exit code; anything else prints its cause and exits 1. Tracebacks only with --debug."""
    try:
        app()  # standalone: Typer handles usage errors (exit 2), --help and its own exits
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True, fg=typer.colors.RED)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001: this is the policy's one place to catch everything
        if _debugging():
            raise
        known = classify(exc)
        if known is not None:
            typer.secho(f"error: {known}", err=True, fg=typer.colors.RED)
            if known.hint:
                typer.echo(f"  {known.hint}", err=True)
            sys.exit(known.exit_code)
        lines = describe_unexpected(exc)
        typer.secho(f"unexpected error: {lines[0]}", err=True, fg=typer.colors.RED)
        for cause in lines[1:]:
            typer.echo(f"  caused by {cause}", err=True)
        typer.echo(f"  rerun with --debug (or {DEBUG_ENV}=1) for the traceback", err=True)
        sys.exit(ExitCode.UNEXPECTED)


if __name__ == "__main__":
    main()
