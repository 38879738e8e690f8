"""Sub-commands of this layer (mounted into `cdr` by cdr/cli.py)."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
