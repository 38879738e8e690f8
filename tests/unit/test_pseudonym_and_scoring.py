"""Keyed pseudonyms (one function for every layer) and the shared scoring of detections."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from cdr.errors import CdrError
from cdr.pseudonym import DEVELOPMENT_KEY, KEY_ENV, hmac_pads, load_key, pseudonymise
from cdr.scoring import Detection, score

KEY = b"k" * 32


def test_pseudonym_is_the_hmac_sha256_of_the_canonical_value():
    # RFC 4231 test case 2: HMAC-SHA256(key="Jefe", "what do ya want for nothing?")
    assert pseudonymise("what do ya want for nothing?", b"Jefe") == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert pseudonymise("+213661234567", KEY) == pseudonymise("213661234567", KEY)
    assert pseudonymise("213661234567", KEY) != pseudonymise("213661234567", b"x" * 32)
    assert pseudonymise(None, KEY) is None


def test_pads_reproduce_the_hmac_with_plain_sha256():
    ipad, opad = hmac_pads(KEY)
    message = b"603011234567890"
    inner = hashlib.sha256(ipad + message).digest()
    assert hashlib.sha256(opad + inner).hexdigest() == pseudonymise("603011234567890", KEY)


def test_key_from_environment_or_file(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, "s" * 40)
    assert load_key(environment="production") == b"s" * 40
    key_file = tmp_path / "key"
    key_file.write_text("f" * 48 + "\n")
    monkeypatch.setenv(KEY_ENV, str(key_file))
    assert load_key(environment="production") == b"f" * 48
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(CdrError, match="at least 32 bytes"):
        load_key(environment="development")


def test_no_key_refuses_unless_the_development_flag_outside_production(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("CDR_DEV_PSEUDONYM_KEY", raising=False)
    with pytest.raises(CdrError, match="no pseudonymisation key"):
        load_key(environment="development")
    assert load_key(allow_development=True, environment="development") == DEVELOPMENT_KEY
    with pytest.raises(CdrError, match="production"):
        load_key(allow_development=True, environment="production")


T0 = dt.datetime(2026, 1, 1, 10, tzinfo=dt.timezone.utc)
H = dt.timedelta(hours=1)


def test_scoring_matches_scenario_entity_and_window():
    labels = [
        {"scenario_id": "S1", "scenario": "sim_box", "entity_type": "msisdn", "entity_id": "213661234567",
         "start_time": T0, "end_time": T0 + 4 * H},
        {"scenario_id": "S2", "scenario": "cell_outage", "entity_type": "cell", "entity_id": "60301-00001-1",
         "start_time": T0, "end_time": T0 + H},
    ]
    p = lambda v: pseudonymise(v, KEY)  # noqa: E731
    detections = [
        Detection("sim_box", p("213661234567"), T0 + H, T0 + 2 * H),          # true positive
        Detection("sim_box", p("213661234567"), T0 + 2 * H, T0 + 3 * H),      # true positive, same label
        Detection("sim_box", p("213669999999"), T0, T0 + H),                  # wrong entity
        Detection("cell_outage", "60301-00001-1", T0 + 6 * H, T0 + 7 * H),    # right cell, far outside the window
    ]
    by = {s.scenario: s for s in score(detections, labels, p)}
    assert (by["sim_box"].detections, by["sim_box"].true_positives, by["sim_box"].labels_found) == (3, 2, 1)
    assert by["sim_box"].precision == pytest.approx(2 / 3) and by["sim_box"].recall == 1.0
    assert by["cell_outage"].precision == 0.0 and by["cell_outage"].recall == 0.0
    assert by["wangiri"].labels == 0 and by["wangiri"].detections == 0


def test_the_min_score_gate_names_every_scenario_under_it_with_exit_5():
    from cdr.errors import BelowThreshold
    from cdr.scoring import Score, require_min_score

    scores = [Score("sim_box", labels=4, detections=4, true_positives=4, labels_found=4),
              Score("wangiri", labels=2, detections=4, true_positives=2, labels_found=2),   # precision 0.5
              Score("roaming_fraud", labels=2, detections=1, true_positives=1, labels_found=1),  # recall 0.5
              Score("cell_outage", labels=0, detections=3, true_positives=0, labels_found=0)]  # not labelled: no gate
    require_min_score(scores, None)
    require_min_score(scores[:1], 0.9)
    with pytest.raises(BelowThreshold) as raised:
        require_min_score(scores, 0.9)
    assert raised.value.exit_code == 5
    assert str(raised.value) == ("2 scenario(s) under --min-score 0.9: wangiri (precision 0.500, recall 1.000), "
                                 "roaming_fraud (precision 1.000, recall 0.500)")
