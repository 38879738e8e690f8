"""Identifier rules: E.164 numbers, IMSI (ITU-T E.212), IMEI (3GPP TS 23.003, Luhn).

Scalar checks (used by validation and the speed layer) and vectorised builders (used by the
generator: identifiers are built as fixed-width ASCII digit matrices, never per-record strings).
"""

from __future__ import annotations

import re

import numpy as np

_DIGITS = re.compile(r"^[0-9]+$")
E164_MAX_DIGITS = 15


def luhn_check_digit(body: str) -> int:
    """Luhn check digit of a digit string (the IMEI's 15th digit for its first 14)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = ord(ch) - 48
        if i % 2 == 0:  # doubled positions, counted from the right of the body
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def is_valid_imei(value: str | None) -> bool:
    return (
        value is not None
        and len(value) == 15
        and bool(_DIGITS.match(value))
        and luhn_check_digit(value[:14]) == ord(value[14]) - 48
    )


def is_valid_imsi(value: str | None, mcc: str | None = None) -> bool:
    """15 digits: MCC (3) + MNC (2 or 3) + MSIN. With ``mcc``, the MCC must match."""
    if value is None or len(value) != 15 or not _DIGITS.match(value):
        return False
    return mcc is None or value.startswith(mcc)


def is_valid_e164(value: str | None) -> bool:
    """E.164 digits without '+': country code first, at most 15 digits, no leading zero."""
    return (
        value is not None
        and 8 <= len(value) <= E164_MAX_DIGITS
        and bool(_DIGITS.match(value))
        and value[0] != "0"
    )


# --- vectorised builders (generator) ----------------------------------------------------------


def digits_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers -> (n, width) uint8 matrix of ASCII digits, zero-padded on the left."""
    values = np.asarray(values, dtype=np.int64)
    out = np.empty((values.shape[0], width), dtype=np.uint8)
    rest = values.copy()
    for col in range(width - 1, -1, -1):
        out[:, col] = rest % 10
        rest //= 10
    out += 48
    return out


def luhn_digits(body: np.ndarray) -> np.ndarray:
    """Luhn check digits for an (n, k) matrix of ASCII digits; returns (n,) ASCII digits."""
    d = body.astype(np.int16) - 48
    k = d.shape[1]
    doubled = (k - 1 - np.arange(k)) % 2 == 0  # rightmost body digit is doubled
    dd = d[:, doubled] * 2
    dd -= 9 * (dd > 9)
    total = dd.sum(axis=1) + d[:, ~doubled].sum(axis=1)
    return ((10 - total % 10) % 10 + 48).astype(np.uint8)


def ascii_rows(matrix: np.ndarray) -> list[str]:
    """Fixed-width ASCII matrix -> Python strings (for small tables and tests, not hot paths)."""
    return [row.tobytes().decode("ascii") for row in matrix]
