"""Settings for several replicas: the state key, Redis, stateless HTTP, and what start-up says.

Bad input gets a clear error that never repeats a secret, and the server does not start.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import httpx2
import pytest

from redu_mcp.config import settings_from_env
from redu_mcp.server.http import replica_notes
from redu_mcp.server.settings import ConfigError, Settings
from tests.helpers import cli_http_server

KEY = secrets.token_hex(32)
OLD = secrets.token_hex(32)


def test_the_state_key_comes_from_the_environment_or_a_file(tmp_path: Path):
    assert settings_from_env({"REDU_MCP_STATE_KEY": KEY}).state_keys == (KEY,)
    assert settings_from_env({"REDU_MCP_STATE_KEY": f"{KEY}, {OLD}"}).state_keys == (KEY, OLD)  # rotation
    secret_file = tmp_path / "state-key"
    secret_file.write_text(KEY + "\n")
    secret_file.chmod(0o600)
    assert settings_from_env({"REDU_MCP_STATE_KEY_FILE": str(secret_file)}).state_keys == (KEY,)
    assert settings_from_env({}).state_keys == ()


@pytest.mark.parametrize(
    ("mode", "owner", "words"),
    [
        (0o644, None, "everyone may read it"),
        (0o620, None, "others may write to it"),
        (0o600, 65534, "belongs to another user"),
    ],
)
def test_a_state_key_file_others_can_read_or_write_is_refused(tmp_path: Path, mode, owner, words):
    """A key others can read lets them forge what replicas share; one others can write, choose it."""
    if owner is not None and os.geteuid() != 0:
        pytest.skip("needs root to hand a file to another user")
    secret_file = tmp_path / "state-key"
    secret_file.write_text(KEY + "\n")
    secret_file.chmod(mode)
    if owner is not None:
        os.chown(secret_file, owner, owner)
    with pytest.raises(ConfigError, match=words) as refused:
        settings_from_env({"REDU_MCP_STATE_KEY_FILE": str(secret_file)})
    assert KEY not in str(refused.value)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"REDU_MCP_STATE_KEY": "short-but-secret"}, "too short or too regular"),
        ({"REDU_MCP_STATE_KEY": "ab" * 32}, "too short or too regular"),
        ({"REDU_MCP_STATE_KEY": KEY[:20] + " " + KEY[20:]}, "printable ASCII without blanks"),
        ({"REDU_MCP_STATE_KEY": f"{KEY},{KEY}"}, "the same key twice"),
        ({"REDU_MCP_STATE_KEY": KEY, "REDU_MCP_STATE_KEY_FILE": "/x"}, "not both"),
        ({"REDU_MCP_STATE_KEY_FILE": "/nonexistent/state-key"}, "cannot read REDU_MCP_STATE_KEY_FILE"),
        ({"REDU_MCP_REDIS_URL": "http://:pw-secret@cache:6379"}, "not a Redis URL"),
        ({"REDU_MCP_STATELESS": "maybe"}, "REDU_MCP_STATELESS"),
    ],
)
def test_bad_replica_settings_are_refused_without_repeating_secrets(env, words):
    with pytest.raises(ConfigError, match=words) as refused:
        settings_from_env(env)
    text = str(refused.value)
    assert KEY not in text and KEY[:20] not in text and "pw-secret" not in text and "short-but-secret" not in text


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("off", False), ("", False)])
def test_stateless_from_the_environment(value, expected):
    assert settings_from_env({"REDU_MCP_STATELESS": value}).stateless is expected


def test_secrets_stay_out_of_the_settings_repr():
    settings = Settings(state_keys=(KEY,), redis_url="redis://:pw-secret@cache:6379/0")
    assert KEY not in repr(settings) and "pw-secret" not in repr(settings)


def test_a_sandbox_served_on_this_machine_may_be_polled_fast():
    assert Settings(api_url="http://127.0.0.1:8080/v1", poll_interval_seconds=0.3).poll_interval == 0.3
    assert Settings(api_url="https://api.redu.cloud/v1", poll_interval_seconds=0.3).poll_interval == 5.0
    assert Settings(api_url="http://127.0.0.1:8080/v1").poll_interval == 15.0  # unless asked, the API's pace


def test_start_up_says_what_a_replica_shares():
    def said(**values) -> str:
        return " ".join(text for _, text in replica_notes(Settings(transport="http", **values)))

    assert replica_notes(Settings(transport="http")) == []  # one local server: nothing about replicas
    # (With Redis a state key is required: the settings refuse a Redis URL without one.)
    for plausible in ({"stateless": True}, {"host": "0.0.0.0"}):
        assert "only one replica is supported" in said(**plausible, auth_token=KEY), plausible
    assert "only one replica is supported" not in said(state_keys=(KEY,), stateless=True)
    assert "127.0.0.1:6379/0" in said(state_keys=(KEY,), redis_url="redis://:pw-secret@127.0.0.1:6379/0")
    assert "pw-secret" not in said(state_keys=(KEY,), redis_url="redis://:pw-secret@127.0.0.1:6379/0")
    assert "sticky" in said(state_keys=(KEY,))  # sessions per replica: the balancer must stick them
    several_without_key = replica_notes(Settings(transport="http", stateless=True))
    assert several_without_key[0][0] == logging.WARNING


def test_the_cli_serves_statelessly_with_a_key_from_a_file_and_never_prints_it(tmp_path: Path):
    key_file = tmp_path / "state-key"
    key_file.write_text(KEY)
    key_file.chmod(0o600)
    env = {"REDU_MCP_STATE_KEY_FILE": str(key_file)}
    with cli_http_server(tmp_path, "--stateless", env=env) as server:
        assert httpx2.get(server.url.removesuffix("/mcp") + "/healthz").json() == {"status": "ok"}
    log = server.log()
    assert "stateless HTTP" in log and KEY not in log
    assert "only one replica is supported" not in log


def test_one_local_server_says_nothing_about_replicas(tmp_path: Path):
    with cli_http_server(tmp_path) as server:
        assert httpx2.get(server.url.removesuffix("/mcp") + "/healthz").status_code == 200
    assert "REDU_MCP_STATE_KEY" not in server.log() and "replica" not in server.log()


def test_a_replica_whose_redis_does_not_answer_says_so_at_start_up_and_serves(tmp_path: Path):
    env = {"REDU_MCP_REDIS_URL": "redis://:start-up-pw@127.0.0.1:1/0", "REDU_MCP_STATE_KEY": KEY}
    with cli_http_server(tmp_path, "--stateless", env=env) as server:
        base = server.url.removesuffix("/mcp")
        assert httpx2.get(f"{base}/healthz").status_code == 200
        assert httpx2.get(f"{base}/readyz").status_code == 503
    log = server.log()
    assert "Redis at 127.0.0.1:1/0 is unavailable" in log
    assert "start-up-pw" not in log and KEY not in log
