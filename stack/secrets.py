"""Secrets of the local stack's services: from the environment, else generated once (development only).

A secret set in the environment always wins. Without one, a development stack generates a random
value once into a file of its state folder (mode 0600) and reuses it, so sessions and passwords
survive restarts without anything secret in the repository. Outside development nothing is
generated: a missing secret is an error naming the variable to set (as cdr.pseudonym does).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cdr.errors import CdrError


def service_secret(env_var: str, file: Path, environment: str) -> str:
    """The value of ``env_var``; in development without it, the value generated once into ``file``."""
    value = os.environ.get(env_var, "").strip()
    if value:
        return value
    if environment != "development":
        raise CdrError(
            f"{env_var} is not set: with environment={environment} no secret is generated; set it, "
            "e.g. to the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return file.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return file.read_text().strip()
