import numpy as np
import pytest

from cdr.identifiers import (
    digits_matrix, is_valid_e164, is_valid_imei, is_valid_imsi, luhn_check_digit, luhn_digits,
)


@pytest.mark.parametrize("body, check", [("49015420323751", 8), ("35328411000000", 0), ("35328411000001", 8)])
def test_luhn_check_digit_of_known_imeis(body, check):
    # 490154203237518 is the worked example of 3GPP TS 23.003 Annex B.
    assert luhn_check_digit(body) == check


@pytest.mark.parametrize("imei, valid", [
    ("490154203237518", True),
    ("490154203237519", False),   # wrong check digit
    ("49015420323751", False),    # 14 digits
    ("4901542032375180", False),  # 16 digits
    ("49015420323751A", False),
    (None, False),
])
def test_imei_validity(imei, valid):
    assert is_valid_imei(imei) is valid


def test_vectorised_luhn_matches_scalar_rule():
    rng = np.random.default_rng(7)
    bodies = digits_matrix(rng.integers(0, 10**14, 500), 14)
    checks = luhn_digits(bodies)
    expected = [luhn_check_digit(b.tobytes().decode()) for b in bodies]
    assert (checks - 48).tolist() == expected


@pytest.mark.parametrize("imsi, mcc, valid", [
    ("603021234567890", "603", True),
    ("603021234567890", "208", False),   # other country
    ("60302123456789", "603", False),    # 14 digits: the classic generator bug
    ("6030212345678901", None, False),
    ("60302123456789X", None, False),
])
def test_imsi_structure(imsi, mcc, valid):
    assert is_valid_imsi(imsi, mcc) is valid


@pytest.mark.parametrize("number, valid", [
    ("213661234567", True),
    ("21323123456", True),
    ("+213661234567", False),
    ("0661234567", False),      # national format, leading zero
    ("2136612345678901", False),  # 16 digits, over E.164's 15
    ("213", False),
])
def test_e164(number, valid):
    assert is_valid_e164(number) is valid


def test_digits_matrix_zero_pads_on_the_left():
    m = digits_matrix(np.array([0, 7, 123456]), 6)
    assert [r.tobytes().decode() for r in m] == ["000000", "000007", "123456"]
