"""Service secrets of the local stack: the environment wins, development generates once, production refuses."""

from __future__ import annotations

import pytest

from cdr.errors import CdrError
from stack.secrets import service_secret

ENV = "CDR_TEST_SERVICE_SECRET"


def test_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "from-the-environment")
    assert service_secret(ENV, tmp_path / "secret", "production") == "from-the-environment"
    assert not (tmp_path / "secret").exists()


def test_development_generates_once_into_a_private_file(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    file = tmp_path / "state" / "secret"
    first = service_secret(ENV, file, "development")
    assert len(first) >= 40 and file.stat().st_mode & 0o777 == 0o600
    assert service_secret(ENV, file, "development") == first


def test_outside_development_a_missing_secret_is_an_error_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(CdrError, match=f"{ENV} is not set"):
        service_secret(ENV, tmp_path / "secret", "production")
    assert not (tmp_path / "secret").exists()
