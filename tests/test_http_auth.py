"""Streamable HTTP and who may use it (``redu_mcp.http``), on a real loopback port under uvicorn,
driven by ``mcp.Client`` over ``streamable_http_client`` in both protocol eras.

* no auth: loopback only, with DNS-rebinding protection (foreign Host → 421);
* operator token: a missing or wrong bearer gets HTTP 401 from the MCP endpoint;
* pass-through: each client's own Redu API key is its bearer, checked with ``GET /v1/me`` (cached
  briefly); a bad key is an HTTP 401, and two users never see each other's instances;
* a non-loopback bind without auth refuses to start; credentials in a query string get 400.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from redu_mcp.config import ConfigError
from redu_mcp.sandbox import Sandbox
from redu_mcp.server import Settings, tools_for
from redu_mcp.server.http import VERIFIED_KEY_TTL, build_http_app
from tests.helpers import ALICE, BOB, CREATE_ARGS, raw_post, serving_mcp_http, two_users

REPO = Path(__file__).resolve().parent.parent
TOKEN = "operator-token-5d0c1a7e9b3f"


class Statuses:
    """An httpx2 response hook: every HTTP status the MCP client received."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def __call__(self, response: httpx2.Response) -> None:
        self.seen.append(response.status_code)


@asynccontextmanager
async def mcp_client(url: str, mode: str, bearer: str | None = None, statuses: Statuses | None = None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    hooks = {"response": [statuses]} if statuses else {}
    http = httpx2.AsyncClient(headers=headers, event_hooks=hooks, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


async def connection_refused(url: str, mode: str, bearer: str | None) -> list[int]:
    """Connect with ``bearer``; the connection must fail (not become a tool error). Returns the statuses."""
    statuses = Statuses()
    with pytest.raises(BaseException) as failure:
        async with mcp_client(url, mode, bearer, statuses) as client:
            await client.list_tools()
    assert (
        failure.group_contains(MCPError)
        if isinstance(failure.value, BaseExceptionGroup)
        else isinstance(failure.value, MCPError)
    )
    return statuses.seen


def http_settings(make_settings, **overrides: Any) -> Settings:
    return make_settings(transport="http", **overrides)


# --- no auth: loopback only -----------------------------------------------------------------------------------


async def test_loopback_without_auth_serves_with_dns_rebinding_protection(make_settings, mode):
    async with serving_mcp_http(http_settings(make_settings, auth_none=True), Sandbox()) as (url, _):
        async with mcp_client(url, mode) as client:
            assert (await client.call_tool("whoami", {})).structured_content["user"]["username"] == "sandbox"
        port = url.split(":")[2].split("/")[0]
        assert (await raw_post(url)).status_code == 200
        assert (await raw_post(url, {"host": "evil.example"})).status_code == 421
        assert (await raw_post(url, {"host": f"evil.example:{port}"})).status_code == 421
        assert (await raw_post(url, {"origin": "http://evil.example"})).status_code == 403
        assert (await raw_post(url, {"host": f"localhost:{port}"})).status_code == 200


# --- the operator's token ------------------------------------------------------------------------------------------


async def test_operator_token(make_settings, mode):
    sandbox = Sandbox()
    async with serving_mcp_http(http_settings(make_settings, auth_token=TOKEN), sandbox) as (url, _):
        missing = await raw_post(url)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer ")
        assert (await raw_post(url, {"authorization": "Bearer wrong-token-0000000000"})).status_code == 401
        assert (await raw_post(url, {"authorization": f"Bearer {TOKEN}x"})).status_code == 401
        assert (await raw_post(url, {"authorization": TOKEN})).status_code == 401  # not a bearer
        assert (await raw_post(url, {"authorization": f"Bearer {TOKEN}"})).status_code == 200

        assert 401 in await connection_refused(url, mode, None)
        assert 401 in await connection_refused(url, mode, "wrong-token-0000000000")
        before = sandbox.count()
        async with mcp_client(url, mode, TOKEN) as client:
            assert len((await client.list_tools()).tools) == len(tools_for("full"))
            assert not (await client.call_tool("whoami", {})).is_error
        assert sandbox.count() == before + 1  # the operator's key serves everyone: no per-request check


def test_a_short_operator_token_is_refused_for_http_only(make_settings):
    short = make_settings(transport="http", auth_token="s3cret")
    with pytest.raises(ConfigError, match="REDU_MCP_AUTH_TOKEN is too short"):
        short.check_http_exposure()
    with pytest.raises(ConfigError, match="too short"):
        build_http_app(make_settings(auth_token="s3cret"), client=Sandbox().client())
    make_settings(transport="stdio", auth_token="s3cret").check_http_exposure()  # stdio never uses it


# --- pass-through: each client's own Redu key ----------------------------------------------------------------------


async def test_pass_through_checks_each_key_with_me_and_caches_it(make_settings, mode):
    sandbox = two_users()
    async with serving_mcp_http(http_settings(make_settings, auth_passthrough=True), sandbox) as (url, runtime):
        statuses = Statuses()
        async with mcp_client(url, mode, ALICE, statuses) as client:
            for _ in range(5):
                assert not (await client.call_tool("list_create_options", {})).is_error
            assert (await client.call_tool("whoami", {})).structured_content["user"]["username"] == "alice"
        assert set(statuses.seen) <= {200, 202}
        # One GET /v1/me verified the key for every request of the session; whoami made the second.
        assert sandbox.count("GET", "/v1/me") == 2
        async with mcp_client(url, mode, ALICE) as client:  # a new session, still cached
            await client.call_tool("list_create_options", {})
        assert sandbox.count("GET", "/v1/me") == 2

        # A bad key is an HTTP 401 at the endpoint, not a tool error.
        assert (await raw_post(url, {"authorization": "Bearer sk-live-nobody-000000000000"})).status_code == 401
        assert 401 in await connection_refused(url, mode, "sk-live-nobody-000000000000")
        assert (await raw_post(url)).status_code == 401

        # Past the cache's lifetime the key is checked again, so a revoked key stops working.
        now = [runtime.clock() + VERIFIED_KEY_TTL + 1]
        runtime.clock = lambda: now[0]
        me_calls = sandbox.count("GET", "/v1/me")
        assert (await raw_post(url, {"authorization": f"Bearer {ALICE}"})).status_code == 200
        assert sandbox.count("GET", "/v1/me") == me_calls + 1
        del sandbox.accounts[ALICE]  # revoked upstream
        assert (await raw_post(url, {"authorization": f"Bearer {ALICE}"})).status_code == 200  # still cached
        now[0] += VERIFIED_KEY_TTL + 1
        assert (await raw_post(url, {"authorization": f"Bearer {ALICE}"})).status_code == 401


async def test_two_keys_never_see_each_others_instances(make_settings, mode):
    sandbox = two_users()
    async with serving_mcp_http(http_settings(make_settings, auth_passthrough=True), sandbox) as (url, _):
        async with mcp_client(url, mode, ALICE) as alice, mcp_client(url, mode, BOB) as bob:
            made = await alice.call_tool("create_redis", dict(CREATE_ARGS, name="alice-cache"))
            id = made.structured_content["instance"]["id"]
            await bob.call_tool("create_redis", dict(CREATE_ARGS, name="bob-cache"))

            alices = await alice.call_tool("list_redis", {})
            bobs = await bob.call_tool("list_redis", {})
            assert [i["name"] for i in alices.structured_content["instances"]] == ["alice-cache"]
            assert [i["name"] for i in bobs.structured_content["instances"]] == ["bob-cache"]

            peek = await bob.call_tool("get_redis", {"id": id})
            assert peek.is_error and "HTTP 404" in peek.content[0].text and "alice-cache" not in peek.content[0].text
            with pytest.raises(MCPError):
                await bob.read_resource(f"redu://redis/{id}")
            # Knowing the name does not help bob delete it either.
            gone = await bob.call_tool("delete_redis", {"id": id, "confirm_name": "alice-cache"})
            assert not gone.is_error and gone.structured_content["deleted"] is False  # to bob, it does not exist
            assert "Nothing to delete" in gone.content[0].text and sandbox.store.exists("redis", id)
            # The same name is free for bob: his namespace is his own.
            again = await bob.call_tool("create_redis", dict(CREATE_ARGS, name="alice-cache"))
            assert again.structured_content["created"] is True
            assert again.structured_content["instance"]["id"] != id
        assert sandbox.count("DELETE") == 0


async def test_shared_wait_polling_never_crosses_users(make_settings, mode):
    """Waits on one instance share one poller per caller: bob's wait on alice's id must not ride hers."""
    sandbox = two_users()
    async with serving_mcp_http(http_settings(make_settings, auth_passthrough=True), sandbox) as (url, runtime):
        async with (
            mcp_client(url, mode, ALICE) as alice,
            mcp_client(url, mode, ALICE) as alice2,
            mcp_client(url, mode, BOB) as bob,
        ):
            made = await alice.call_tool("create_database", dict(CREATE_ARGS, name="alice-db"))
            id = made.structured_content["instance"]["id"]
            args = {"kind": "database", "id": id, "timeout_seconds": 20}
            results: dict[str, Any] = {}

            async def wait(who: str, client: Client) -> None:
                results[who] = await client.call_tool("wait_for_ready", args, read_timeout_seconds=30)

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait, "alice", alice)
                tg.start_soon(wait, "alice2", alice2)
                tg.start_soon(wait, "bob", bob)
        for who in ("alice", "alice2"):
            assert results[who].structured_content["ready"] is True
            assert results[who].structured_content["instance"]["name"] == "alice-db"
        assert results["bob"].is_error
        assert "There is no PostgreSQL database" in results["bob"].content[0].text
        assert "alice-db" not in json.dumps(results["bob"].model_dump(mode="json"))
        assert not runtime.board._entries  # every waiter left the board


async def test_concurrent_requests_keep_callers_apart(make_settings, mode):
    sandbox = two_users()
    async with serving_mcp_http(http_settings(make_settings, auth_passthrough=True), sandbox) as (url, _):
        async with mcp_client(url, mode, ALICE) as alice, mcp_client(url, mode, BOB) as bob:
            await alice.call_tool("create_database", dict(CREATE_ARGS, name="only-alice"))
            await bob.call_tool("create_database", dict(CREATE_ARGS, name="only-bob"))
            seen: list[tuple[str, list[str], str]] = []

            async def ask(who: str, client: Client) -> None:
                listed = await client.call_tool("list_databases", {})
                me = await client.call_tool("whoami", {})
                names = [i["name"] for i in listed.structured_content["instances"]]
                seen.append((who, names, me.structured_content["user"]["username"]))

            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(ask, "alice", alice)
                    tg.start_soon(ask, "bob", bob)
        assert len(seen) == 20
        for who, names, username in seen:
            assert names == [f"only-{who}"] and username == who


# --- exposure and URLs ---------------------------------------------------------------------------------------------


def test_a_public_bind_without_auth_refuses_to_start(make_settings):
    exposed = make_settings(transport="http", host="0.0.0.0")
    with pytest.raises(ConfigError, match=r"refusing to serve HTTP on 0\.0\.0\.0 without authentication"):
        exposed.check_http_exposure()
    # Also when the app is built outside the CLI, whatever `transport` says.
    with pytest.raises(ConfigError):
        build_http_app(make_settings(host="0.0.0.0"), client=Sandbox().client())
    # With authentication it may serve any address.
    for authenticated in (dict(auth_token=TOKEN), dict(auth_passthrough=True)):
        settings = make_settings(transport="http", host="0.0.0.0", **authenticated)
        settings.check_http_exposure()
        build_http_app(settings, client=Sandbox().client())


def test_the_cli_refuses_a_public_bind_without_auth():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDU_")}
    done = subprocess.run(
        [sys.executable, "-m", "redu_mcp", "--transport", "http", "--host", "0.0.0.0", "--sandbox"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=REPO, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to serve HTTP on 0.0.0.0 without authentication" in done.stderr
    assert "REDU_MCP_AUTH_TOKEN" in done.stderr and "passthrough" in done.stderr


@pytest.mark.parametrize("auth", ["none", "token", "passthrough"])
async def test_credentials_in_the_query_string_are_refused(make_settings, auth):
    overrides = {
        "token": dict(auth_token=TOKEN),
        "passthrough": dict(auth_passthrough=True),
        "none": dict(auth_none=True),
    }[auth]
    sandbox = two_users()
    bearer = {
        "none": {},
        "token": {"authorization": f"Bearer {TOKEN}"},
        "passthrough": {"authorization": f"Bearer {ALICE}"},
    }[auth]
    async with serving_mcp_http(http_settings(make_settings, **overrides), sandbox) as (url, _):
        for name in (
            "api_key",
            "apikey",
            "X-Api-Key",
            "access_token",
            "token",
            "key",
            "redu_api_key",
            "Authorization",
            "password",
        ):
            response = await raw_post(f"{url}?{name}={ALICE}", bearer)
            assert response.status_code == 400, name
            assert ALICE not in response.text
            assert "Authorization header" in response.text
        me_calls = sandbox.count("GET", "/v1/me")
        assert (await raw_post(f"{url}?api_key={ALICE}")).status_code == 400  # refused before any auth check
        assert sandbox.count("GET", "/v1/me") == me_calls
        assert (await raw_post(f"{url}?page=2", bearer)).status_code == 200  # other parameters are no concern
