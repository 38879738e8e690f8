"""`cdr`: the platform's single command-line entry point.

Each layer owns its sub-commands (``generator.cli``, ``stack.cli``, ...); this module only
mounts them, so `cdr --help` lists everything and each layer stays importable alone.
"""

from __future__ import annotations

import sys

import typer

from cdr import __version__
from cdr.errors import CdrError

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
    from stack.cli import app as stack_app
    from streaming.cli import produce_app, stream_app, topics_app

    app.command("generate", help="Generate a labelled synthetic CDR dataset.")(generate)
    app.add_typer(stack_app, name="stack", help="Run the platform's services as local processes.")
    app.add_typer(contract_app, name="contract", help="Export the data contract (docs, JSON Schema, DDL).")
    app.add_typer(batch_app, name="batch", help="Batch layer: raw -> clean -> cdr_dw on HDFS/Hive, scoring.")
    app.add_typer(topics_app, name="topics", help="Kafka topics of the speed layer (declared in configuration).")
    app.add_typer(produce_app, name="produce", help="Stream CDRs (or subscriber profiles) into Kafka.")
    app.add_typer(stream_app, name="stream", help="Speed layer: Flink jobs on the local cluster, scoring.")


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


_mount()


def main() -> None:
    """Run the CLI. Usage errors and Ctrl-C are handled by Typer (exit 2 and 1); a CdrError
    becomes one readable line on stderr and exit code 2, without a traceback."""
    try:
        app()
    except CdrError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)


if __name__ == "__main__":
    main()
