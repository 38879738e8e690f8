"""The container stack's compose files render and validate, without a container engine.

Rendering is compose/compose.py's own (merge the files, interpolate from an env built from
.env.example); `docker compose config` is not used because it needs the compose plugin, which
this machine's docker client lacks. The schema is the Compose Specification's, vendored in
compose/schema/ (Apache-2.0).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_compose_module():
    spec = importlib.util.spec_from_file_location("cdr_compose", REPO / "compose" / "compose.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compose = _load_compose_module()


def example_env() -> dict[str, str]:
    """.env.example with every empty (secret) value filled, as a user's .env would be."""
    env = compose.read_env_file(REPO / ".env.example")
    return {k: v or f"test-{k.lower()}" for k, v in env.items()}


@pytest.fixture(scope="module")
def schema_validator():
    schema = json.loads((REPO / "compose" / "schema" / "compose-spec.json").read_text())
    return jsonschema.Draft7Validator(schema)


def _errors(validator, model) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(model)]


def test_whole_project_validates_against_the_compose_spec(schema_validator):
    model = compose.render(example_env(), profiles=None)
    assert _errors(schema_validator, model) == []


@pytest.mark.parametrize("name", compose.FILES)
def test_each_file_alone_validates(schema_validator, name):
    model = compose.render(example_env(), profiles=None, files=(name,))
    assert _errors(schema_validator, model) == []


def test_the_schema_rejects_a_broken_service(schema_validator):
    """The validation is real: an unknown key and a wrong type are reported."""
    model = compose.render(example_env(), profiles=None)
    model["services"]["postgres"]["helthcheck"] = {}
    model["services"]["postgres"]["ports"] = "5432:5432"
    errors = _errors(schema_validator, model)
    assert any("helthcheck" in e for e in errors)
    assert any(e.startswith("services/postgres/ports") for e in errors)


def test_every_file_of_the_project_is_rendered():
    on_disk = {p.name for p in (REPO / "compose").glob("*.yaml")}
    assert on_disk == set(compose.FILES)


@pytest.mark.parametrize("secret", ["POSTGRES_PASSWORD", "SUPERSET_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD",
                                    "CDR_PSEUDONYM_KEY", "SUPERSET_ADMIN_PASSWORD", "JUPYTER_TOKEN"])
def test_a_missing_secret_stops_rendering_with_a_message(secret):
    env = example_env()
    env[secret] = ""
    with pytest.raises(compose.InterpolationError, match=rf"{secret} is missing a value: set {secret} in \.env"):
        compose.render(env, profiles=None)


def test_interpolation_follows_compose_rules():
    env = {"SET": "x", "EMPTY": ""}
    assert compose.interpolate("${SET:-d}|${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}|$$HOME|$SET", env) == "x|d|d||$HOME|x"
    with pytest.raises(compose.InterpolationError, match="why"):
        compose.interpolate("${EMPTY:?why}", env)


def test_profiles_select_services():
    env = example_env()
    batch = compose.render(env, profiles=("batch",))["services"]
    assert {"namenode", "spark-thrift", "metastore-init", "postgres"} <= set(batch)
    assert not {"kafka-1", "prometheus", "superset", "jupyter", "cdr"} & set(batch)
    everything = compose.render(env)["services"]
    assert "cdr" not in everything  # profile tools: one-shot commands only
    assert not {"grafana", "kafka-ui"} & set(everything)  # opt-in upstream extras


def test_profiles_bring_the_profiles_they_need():
    assert compose.parse_profiles("stream") == ("batch", "stream")
    assert compose.parse_profiles("grafana") == ("monitoring", "grafana")
    assert compose.parse_profiles("") == compose.PROFILES


def _run_cli(*args: str, env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, str(REPO / "compose" / "compose.py"), *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


def test_up_without_an_engine_says_so_and_points_to_up_local(tmp_path):
    """An engine counts only if it answers: here a fake `docker` whose daemon is unreachable."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\n[ \"$1\" = compose ] && [ \"$2\" = version ] && exit 0\nexit 1\n")
    (fake / "docker").chmod(0o755)
    result = _run_cli("up", env_extra={"PATH": f"{fake}:/usr/bin:/bin", "COMPOSE": ""}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "No working container engine: the docker engine does not answer" in result.stderr
    assert "make up-local" in result.stderr and "make engine" in result.stderr


def test_compose_override_is_the_only_candidate(tmp_path):
    result = _run_cli("ps", env_extra={"COMPOSE": "podman-compose", "PATH": str(tmp_path)}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "`podman-compose` is not installed" in result.stderr


def test_unknown_profile_is_refused(tmp_path):
    result = _run_cli("up", "--profiles", "batch,gpu", env_extra={}, tmp_path=tmp_path)
    assert result.returncode == 2 and "unknown profile(s) ['gpu']" in result.stderr


def test_reset_without_a_terminal_needs_force(monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with pytest.raises(compose.StackError, match="FORCE=1"):
        compose.confirm_reset(force=False)
    assert compose.confirm_reset(force=True)


def test_wait_healthy_polls_until_healthy_and_fails_on_a_failed_one_shot(monkeypatch):
    services = {"db": {"healthcheck": {}, "restart": "always"}, "init": {"restart": "no"}}
    rounds = iter([
        {"db": {"status": "running", "health": "starting", "exit_code": 0, "restarts": 0}},
        {"db": {"status": "running", "health": "healthy", "exit_code": 0, "restarts": 0},
         "init": {"status": "exited", "health": "", "exit_code": 0, "restarts": 0}},
    ])

    class Fake:
        def containers(self):
            return next(rounds)

    monkeypatch.setattr(compose.time, "sleep", lambda s: None)
    compose.wait_healthy(Fake(), services, timeout_s=60)  # returns on the second round

    class Failed:
        def containers(self):
            return {"db": {"status": "running", "health": "healthy", "exit_code": 0, "restarts": 0},
                    "init": {"status": "exited", "health": "", "exit_code": 1, "restarts": 0}}

    with pytest.raises(compose.UnhealthyError, match="init exited 1") as failed:
        compose.wait_healthy(Failed(), services, timeout_s=60)
    assert failed.value.services == ["init"]   # whose logs `up` prints


def test_ui_table_uses_the_bind_address_and_port_overrides():
    env = {**example_env(), "BIND_IP": "127.0.0.2", "GRAFANA_PORT": "3300"}
    table = compose.ui_table(env, compose.render(env, compose.PROFILES + compose.EXTRAS)["services"])
    assert "http://127.0.0.2:3300" in table and "hive://127.0.0.2:10000" in table


def test_ui_table_defaults_match_the_compose_files():
    env = example_env()
    services = compose.render(env, compose.PROFILES + compose.EXTRAS)["services"]
    for service, _label, var, default, _scheme in compose.UIS:
        published = [p for p in services[service]["ports"] if p.split(":")[1] == str(default)]
        assert published, f"{service} does not publish {default} ({var})"
        raw = [p for f in compose.load_files().values() for p in (f["services"].get(service) or {}).get("ports", [])]
        assert any(f"${{{var}:-{default}}}" in p for p in raw), (service, var)
