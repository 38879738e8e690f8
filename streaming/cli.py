"""Sub-commands of the speed layer, mounted into `cdr` by cdr/cli.py as three groups."""

import typer

topics_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
produce_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
stream_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
