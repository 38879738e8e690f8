"""Keyed pseudonymisation shared by the batch and speed layers.

Identifiers leave the raw zone only as ``lower hex of HMAC-SHA256(key, canonical value)``. An
unkeyed hash of a phone number is reversible (there are only a few billion numbers to hash);
a keyed one is not without the key. The canonical value is the E.164 digit string without '+'
for numbers and the 15-digit string for IMSI/IMEI, so the same identifier always gives the
same pseudonym in every layer and alerts join warehouse rows.

The key comes from ``CDR_PSEUDONYM_KEY`` (the key itself, or the path of a file holding it).
Without one, only an explicit development flag supplies the fixed development key, and never
when the platform runs with ``environment = "production"``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cdr.errors import CdrError

KEY_ENV = "CDR_PSEUDONYM_KEY"
DEV_ENV = "CDR_DEV_PSEUDONYM_KEY"  # "1": use the development key when no key is set
MIN_KEY_BYTES = 32
# Public on purpose: it protects nothing and is refused in production.
DEVELOPMENT_KEY = b"cdr-platform-development-key-not-a-secret-0001"
BLOCK = 64  # SHA-256 block size (bytes)


def load_key(allow_development: bool = False, environment: str | None = None) -> bytes:
    """The pseudonymisation key, or a clear error saying how to provide one."""
    if environment is None:
        from cdr.settings import get_settings

        environment = get_settings().environment
    raw = os.environ.get(KEY_ENV, "").strip()
    if raw:
        path = Path(raw)
        key = path.read_bytes().strip() if path.is_file() else raw.encode()
        if len(key) < MIN_KEY_BYTES:
            raise CdrError(f"{KEY_ENV} must hold at least {MIN_KEY_BYTES} bytes (got {len(key)}); "
                           "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'")
        if key == DEVELOPMENT_KEY and environment == "production":
            raise CdrError("the development pseudonymisation key is refused in production")
        return key
    allow_development = allow_development or os.environ.get(DEV_ENV) == "1"
    if not allow_development:
        raise CdrError(f"no pseudonymisation key: set {KEY_ENV} to a key of at least {MIN_KEY_BYTES} bytes "
                       f"(or the path of a key file); for development only, pass --dev-key or set {DEV_ENV}=1")
    if environment == "production":
        raise CdrError(f"environment is production: the development key is refused; set {KEY_ENV}")
    return DEVELOPMENT_KEY


def canonical(value: str) -> str:
    """E.164 digits without '+', or the 15 digits of an IMSI/IMEI: strip spaces and a leading '+'."""
    return value.strip().removeprefix("+")


def pseudonymise(value: str | None, key: bytes) -> str | None:
    if value is None:
        return None
    return hmac.new(key, canonical(value).encode("utf-8"), hashlib.sha256).hexdigest()


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """(key XOR ipad, key XOR opad) so an engine without an HMAC function can compute
    sha256(opad_key || unhex(sha256(ipad_key || message))) from its own SHA-256 function.
    Pass the pads as data (a broadcast one-row table), never as literals in a query plan:
    plans are logged and shown in UIs, and the pads reveal the key."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
