"""What the HTTP server advertises, and which Host and Origin headers it serves.

The review found the protected-resource metadata naming the MCP endpoint as its own authorization
server (which serves no metadata), and a ``0.0.0.0`` bind advertising ``http://127.0.0.1:…``. Now:

* nothing OAuth-shaped is served in any mode (the well-known paths answer 404) and the 401
  challenge is a plain RFC 6750 ``Bearer realm="redu-mcp"``, naming no metadata;
* ``--public-url`` / ``REDU_MCP_PUBLIC_URL`` is what is advertised (the banner's URL and client
  configuration) and which ``Host`` is served, so DNS-rebinding protection stays on behind a proxy;
* a wildcard bind never advertises a loopback address;
* browser origins: loopback pages, the public URL's origin and ``--allowed-origin`` /
  ``REDU_MCP_ALLOWED_ORIGINS`` pass; any other ``Origin`` gets 403, before any credential check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from redu_mcp.config import ConfigError, settings_from_env
from redu_mcp.sandbox import Sandbox
from redu_mcp.server.http import advertised_url, client_setup, host_rules
from tests.helpers import ALICE, cli_http_server, raw_post, serving_mcp_http, two_users

TOKEN = "discovery-test-token-3b9e71c0aa"
WELL_KNOWN = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/mcp",
    "/.well-known/openid-configuration",
)


def base(url: str) -> str:
    return url.rsplit("/mcp", 1)[0]


@pytest.mark.parametrize("auth", ["token", "passthrough"])
async def test_no_oauth_metadata_and_a_plain_bearer_challenge(make_settings, auth):
    auth_settings: dict[str, Any] = dict(auth_token=TOKEN) if auth == "token" else dict(auth_passthrough=True)
    sandbox = two_users()
    async with serving_mcp_http(make_settings(transport="http", **auth_settings), sandbox) as (url, _):
        async with httpx2.AsyncClient() as http:
            for path in WELL_KNOWN:
                answer = await http.get(base(url) + path)
                assert answer.status_code == 404, path
                assert "authorization_servers" not in answer.text
        missing = await raw_post(url)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="redu-mcp"'
        wrong = await raw_post(url, {"authorization": "Bearer not-the-token-000000000"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == (
            'Bearer realm="redu-mcp", error="invalid_token", error_description="The bearer token is not valid"'
        )
        for answer in (missing, wrong):
            assert "resource_metadata" not in answer.headers["www-authenticate"]
        good = TOKEN if auth == "token" else ALICE
        assert (await raw_post(url, {"authorization": f"Bearer {good}"})).status_code == 200


async def test_behind_a_proxy_the_public_url_is_advertised_and_its_host_served(make_settings):
    public = "https://mcp.example.test/mcp"
    settings = make_settings(transport="http", auth_token=TOKEN, public_url=public)
    assert advertised_url(settings) == public
    banner = client_setup(settings)
    assert f"at {public}" in banner and f"redu {public} --header" in banner and "127.0.0.1" not in banner
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with serving_mcp_http(settings, Sandbox()) as (url, _):
        port = url.split(":")[2].split("/")[0]
        # As nginx forwards it ($host: no port), as a client may send it, and directly on loopback.
        for host in ("mcp.example.test", "mcp.example.test:443", f"127.0.0.1:{port}"):
            assert (await raw_post(url, {**auth, "host": host})).status_code == 200, host
        # A rebinding page's host, or a look-alike, is refused (before the token is even looked at).
        for host in ("evil.example", "mcp.example.test.evil.example", "MCP.example.test.", "evil.example:443"):
            assert (await raw_post(url, {**auth, "host": host})).status_code == 421, host
        assert (await raw_post(url, {"host": "evil.example"})).status_code == 421
        # The public URL's origin is a browser origin it serves; others are not.
        assert (await raw_post(url, {**auth, "origin": "https://mcp.example.test"})).status_code == 200
        assert (await raw_post(url, {**auth, "origin": "https://evil.example"})).status_code == 403


def test_a_wildcard_bind_never_advertises_loopback(make_settings):
    for host in ("0.0.0.0", "::"):
        settings = make_settings(transport="http", host=host, auth_token=TOKEN)
        assert "127.0.0.1" not in advertised_url(settings) and "localhost" not in advertised_url(settings)
        assert "127.0.0.1" not in client_setup(settings)
        # No name is known to check the Host against, so that check is off (auth is required there)…
        assert not host_rules(settings).check_host
        # …but with --public-url it is on, for the public name.
        proxied = make_settings(transport="http", host=host, auth_token=TOKEN, public_url="https://m.example.test/mcp")
        rules = host_rules(proxied)
        assert rules.check_host and rules.host_allowed("m.example.test") and not rules.host_allowed("evil.example")


async def test_the_cli_on_0_0_0_0_advertises_its_public_url_or_its_name(tmp_path: Path):
    env = {"REDU_MCP_AUTH_TOKEN": TOKEN}
    with cli_http_server(tmp_path, env=env, host="0.0.0.0") as server:
        log = server.log()
        assert "127.0.0.1" not in log and "localhost" not in log
        assert TOKEN not in log  # an operator's token is never printed
        async with httpx2.AsyncClient() as http:
            assert (await http.get(base(server.url) + WELL_KNOWN[1])).status_code == 404
        assert (await raw_post(server.url, {"authorization": f"Bearer {TOKEN}"})).status_code == 200
    public = "https://mcp.example.test/mcp"
    with cli_http_server(tmp_path, "--public-url", public, env=env, host="0.0.0.0") as server:
        entry = json.loads(next(line for line in server.log().splitlines() if '"mcpServers"' in line))
        assert entry["mcpServers"]["redu"]["url"] == public
        assert entry["mcpServers"]["redu"]["headers"] == {"Authorization": "Bearer ${REDU_MCP_AUTH_TOKEN}"}
        ok = await raw_post(server.url, {"authorization": f"Bearer {TOKEN}", "host": "mcp.example.test"})
        assert ok.status_code == 200
        assert (
            await raw_post(server.url, {"authorization": f"Bearer {TOKEN}", "host": "evil.example"})
        ).status_code == 421


async def test_allowed_origins_pass_and_others_get_403(make_settings):
    settings = make_settings(transport="http", auth_token=TOKEN, allowed_origins=("https://app.example.test",))
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with serving_mcp_http(settings, Sandbox()) as (url, _):
        assert (await raw_post(url, {**auth, "origin": "https://app.example.test"})).status_code == 200
        assert (await raw_post(url, {**auth, "origin": "http://localhost:5173"})).status_code == 200  # a local page
        assert (await raw_post(url, auth)).status_code == 200  # no Origin: not a browser
        for origin in ("https://evil.example", "https://app.example.test.evil.example", "http://app.example.test",
                       "https://app.example.test:8443", "null"):  # fmt: skip
            assert (await raw_post(url, {**auth, "origin": origin})).status_code == 403, origin


async def test_origins_are_checked_before_credentials_even_where_the_host_check_is_off(make_settings):
    """On 0.0.0.0 without --public-url the Host is not checked, but a browser origin still is, and a
    refused origin costs no key check."""
    sandbox = two_users()
    settings = make_settings(
        transport="http", host="0.0.0.0", auth_passthrough=True, allowed_origins=("https://app.example.test",)
    )
    async with serving_mcp_http(settings, sandbox) as (url, _):
        auth = {"authorization": f"Bearer {ALICE}"}
        assert (await raw_post(url, {**auth, "host": "anything.example"})).status_code == 200
        assert (await raw_post(url, {**auth, "origin": "https://app.example.test"})).status_code == 200
        checks = sandbox.count("GET", "/v1/me")
        refused = await raw_post(
            url, {"authorization": "Bearer sk-live-unknown-0000000", "origin": "https://evil.example"}
        )
        assert refused.status_code == 403
        assert sandbox.count("GET", "/v1/me") == checks


async def test_the_cli_takes_origins_from_flags_and_the_environment(tmp_path: Path):
    env = {"REDU_MCP_ALLOWED_ORIGINS": "https://env.example.test, https://env2.example.test"}
    flags = (
        "--allowed-origin",
        "https://a.example.test,https://b.example.test",
        "--allowed-origin",
        "https://c.example.test",
    )
    with cli_http_server(tmp_path, *flags, env=env) as server:
        auth = {"authorization": f"Bearer {server.token}"}
        for origin in ("https://a.example.test", "https://b.example.test", "https://c.example.test"):
            assert (await raw_post(server.url, {**auth, "origin": origin})).status_code == 200, origin
        # Flags replace the environment's list (flags override, as everywhere).
        assert (await raw_post(server.url, {**auth, "origin": "https://env.example.test"})).status_code == 403
    with cli_http_server(tmp_path, env=env) as server:
        auth = {"authorization": f"Bearer {server.token}"}
        assert (await raw_post(server.url, {**auth, "origin": "https://env2.example.test"})).status_code == 200
        assert (await raw_post(server.url, {**auth, "origin": "https://d.example.test"})).status_code == 403


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("REDU_MCP_PUBLIC_URL", "mcp.example.com", "invalid public URL"),
        ("REDU_MCP_PUBLIC_URL", "ftp://mcp.example.com/mcp", "invalid public URL"),
        ("REDU_MCP_PUBLIC_URL", "https://user:pw@mcp.example.com/mcp", "invalid public URL"),
        ("REDU_MCP_PUBLIC_URL", "https://mcp.example.com/mcp?x=1", "invalid public URL"),
        ("REDU_MCP_ALLOWED_ORIGINS", "https://app.example.com/path", "invalid allowed origin"),
        ("REDU_MCP_ALLOWED_ORIGINS", "*", "invalid allowed origin"),
        ("REDU_MCP_MAX_SESSIONS_PER_PRINCIPAL", "many", "REDU_MCP_MAX_SESSIONS_PER_PRINCIPAL"),
        ("REDU_MCP_SESSION_IDLE_SECONDS", "-5", "session_idle_seconds"),
    ],
)
def test_bad_http_settings_are_clear_errors(variable, value, words):
    with pytest.raises(ConfigError, match=words):
        settings_from_env({variable: value})


def test_http_settings_from_the_environment():
    settings = settings_from_env({
        "REDU_MCP_PUBLIC_URL": "https://mcp.example.com/redu/mcp",
        "REDU_MCP_ALLOWED_ORIGINS": "https://a.example.com/, http://localhost:*",
        "REDU_MCP_MAX_SESSIONS": "200",
        "REDU_MCP_MAX_SESSIONS_PER_PRINCIPAL": "7",
        "REDU_MCP_NEW_SESSIONS_PER_MINUTE": "12",
        "REDU_MCP_SESSION_IDLE_SECONDS": "600",
        "REDU_MCP_KEY_CHECKS_PER_MINUTE": "9",
        "REDU_MCP_REJECTED_KEY_SECONDS": "15.5",
    })  # fmt: skip
    assert settings.public_url == "https://mcp.example.com/redu/mcp"
    assert settings.allowed_origins == ("https://a.example.com", "http://localhost:*")
    limits = settings.http_limits
    assert (limits.max_sessions, limits.max_sessions_per_principal, limits.new_sessions_per_minute) == (200, 7, 12)
    assert (limits.session_idle_seconds, limits.key_checks_per_minute, limits.rejected_key_seconds) == (600, 9, 15.5)
