"""Errors the CLI turns into one clear line and a non-zero exit (no traceback)."""


class CdrError(Exception):
    """A user-facing failure: bad argument, missing service, unsafe configuration."""
