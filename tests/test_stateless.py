"""Serving as one of several replicas, in one process: stateless HTTP, a shared state key, health.

Real uvicorn on loopback ports and real ``mcp.Client``s in both eras. Two apps built from the same
settings stand for two replicas: a client whose transport sends the answering round of a call to
the other one shows what a round-robin balancer would do (``tests/test_replicas.py`` does it with
real processes behind HAProxy).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitResult

from redu_mcp.sandbox import Sandbox
from redu_mcp.server.settings import HttpLimits, Settings
from tests.confirmation_pages import PageClient, typing
from tests.helpers import seed_instance, serving_mcp_http

TOKEN = "stateless-test-token-" + "0123456789abcdef"


def http_settings(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    return make_settings(transport="http", auth_token=TOKEN, **overrides)


@asynccontextmanager
async def mcp_client(url: str, mode: str = "auto", transport: Any = None, **options: Any):
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, **({"transport": transport} if transport else {})
    )
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, **options) as client:
        yield client


async def tick(context: Any, params: Any) -> ElicitResult:
    return ElicitResult(action="accept", content={"confirm": True})


class AnswersElsewhere(httpx2.AsyncBaseTransport):
    """Sends the answering round of a call (params carrying ``inputResponses``) to ``port``,
    everything else where it was going: a balancer that puts the two rounds on two replicas."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx2.AsyncHTTPTransport()
        self.rerouted = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        params = (json.loads(request.content or b"{}") or {}).get("params") or {}
        if "inputResponses" in params:
            request.url = request.url.copy_with(port=self.port)
            self.rerouted += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- a state key shared by replicas ----------------------------------------------------------------------


OLD, NEW = secrets.token_hex(32), secrets.token_hex(32)


@pytest.mark.parametrize(
    ("asking", "answering", "shared_key"),
    [
        ((NEW,), (NEW,), True),  # one key on every replica
        ((OLD, NEW), (NEW, OLD), True),  # mid-rotation: sealed with the old key, the other still unseals it
        ((NEW,), (), False),  # the control: the answering replica has only a key of its own
    ],
)
async def test_a_delete_asked_by_one_replica_is_answered_through_another_with_a_shared_key(
    make_settings, sandbox: Sandbox, asking: tuple[str, ...], answering: tuple[str, ...], shared_key: bool
):
    first = http_settings(make_settings, stateless=True, state_keys=asking)
    second = http_settings(make_settings, stateless=True, state_keys=answering)
    id = await seed_instance(sandbox, "database", "two-replicas")
    async with serving_mcp_http(first, sandbox) as (url_a, _), serving_mcp_http(second, sandbox) as (url_b, _):
        transport = AnswersElsewhere(int(url_b.rsplit(":", 1)[1].split("/")[0]))
        async with mcp_client(url_a, transport=transport, elicitation_callback=tick) as client:
            if shared_key:
                result = await client.call_tool("delete_database", {"id": id})
                assert result.structured_content["deleted"] is True
            else:
                with pytest.raises(MCPError) as refused:
                    await client.call_tool("delete_database", {"id": id})
                assert (refused.value.error.code, refused.value.error.message) == (
                    -32602,
                    "Invalid or expired requestState",
                )
    assert transport.rerouted == 1
    assert sandbox.store.exists("database", id) is not shared_key


# --- stateless: what 2025-11-25 clients get ----------------------------------------------------------------


async def test_a_2025_client_without_sessions_confirms_by_name_and_is_told_why(make_settings, sandbox):
    id = await seed_instance(sandbox, "redis", "legacy-by-name")
    async with serving_mcp_http(http_settings(make_settings, stateless=True), sandbox) as (url, _):
        async with mcp_client(url, "legacy", elicitation_callback=tick) as client:
            refused = await client.call_tool("delete_redis", {"id": id})
            message = refused.structured_content["message"]
            assert refused.structured_content["deleted"] is False
            assert "protocol 2025-11-25" in message and "without sessions" in message
            assert "call delete_redis again with confirm_name='legacy-by-name'" in message
            assert sandbox.store.exists("redis", id)
            done = await client.call_tool("delete_redis", {"id": id, "confirm_name": "legacy-by-name"})
            assert done.structured_content["deleted"] is True


async def test_under_confirm_human_a_2025_client_without_sessions_is_refused_clearly(make_settings, sandbox):
    id = await seed_instance(sandbox, "database", "legacy-human")
    settings = http_settings(make_settings, stateless=True, confirm="human")
    async with serving_mcp_http(settings, sandbox) as (url, _):
        async with mcp_client(url, "legacy", elicitation_callback=tick) as client:
            for arguments in ({"id": id}, {"id": id, "confirm_name": "legacy-human"}):
                result = await client.call_tool("delete_database", arguments)
                assert not result.is_error  # a refusal the model can read, not a protocol error
                message = result.structured_content["message"]
                assert result.structured_content["deleted"] is False
                assert "--confirm human" in message and "protocol 2025-11-25" in message
                assert "2026-07-28" in message and "Redu console" in message
        assert sandbox.store.exists("database", id)
        # A 2026-07-28 client on the same server opens the confirmation page, and the person's approval deletes.
        async with mcp_client(url, "auto", elicitation_callback=PageClient(person=typing("legacy-human"))) as client:
            result = await client.call_tool("delete_database", {"id": id})
            assert result.structured_content["deleted"] is True


async def test_with_sessions_a_2025_client_is_still_asked(make_settings, sandbox):
    id = await seed_instance(sandbox, "database", "legacy-asked")
    pages = PageClient(person=typing("legacy-asked"))
    async with serving_mcp_http(http_settings(make_settings, confirm="human"), sandbox) as (url, _):
        async with mcp_client(url, "legacy", elicitation_callback=pages) as client:
            result = await client.call_tool("delete_database", {"id": id})
    assert result.structured_content["deleted"] is True and pages.messages


async def test_without_sessions_nothing_counts_against_the_session_limits(make_settings, sandbox):
    settings = http_settings(
        make_settings, stateless=True, http_limits=HttpLimits(max_sessions_per_principal=1, new_sessions_per_minute=1)
    )
    async with serving_mcp_http(settings, sandbox) as (url, _):
        for _ in range(4):  # each legacy client would open a session on a stateful server: 429 after the first
            async with mcp_client(url, "legacy") as client:
                assert not (await client.call_tool("whoami", {})).is_error


# --- health ---------------------------------------------------------------------------------------------------


async def test_health_needs_no_token_and_says_nothing_more(make_settings, sandbox):
    async with serving_mcp_http(http_settings(make_settings), sandbox) as (url, _):
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{base}/healthz")).json() == {"status": "ok"}
            ready = await http.get(f"{base}/readyz", headers={"host": "10.0.0.5:8000"})  # a probe by address
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
            assert (await http.head(f"{base}/healthz")).status_code == 200
            assert (await http.delete(f"{base}/healthz")).status_code == 405
            assert (await http.get(f"{base}/healthz/x")).status_code in (401, 404)  # only the exact paths
            assert (await http.get(url)).status_code == 401


async def test_with_redis_unreachable_ready_says_no_but_every_tool_works(make_settings, sandbox, caplog):
    settings = http_settings(make_settings, redis_url="redis://:not-logged-pw@127.0.0.1:1/0", state_keys=(NEW,))
    id = await seed_instance(sandbox, "database", "no-redis")
    with caplog.at_level(logging.INFO):
        async with serving_mcp_http(settings, sandbox) as (url, _):
            base = url.removesuffix("/mcp")
            async with httpx2.AsyncClient(timeout=10) as http:
                assert (await http.get(f"{base}/healthz")).status_code == 200
                not_ready = await http.get(f"{base}/readyz")
                assert (not_ready.status_code, not_ready.json()) == (503, {"status": "not ready"})
            async with mcp_client(url) as client:
                waited = await client.call_tool("wait_for_ready", {"kind": "database", "id": id})
                assert waited.structured_content["ready"] is True
    warnings = [r.getMessage() for r in caplog.records if "is unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "127.0.0.1:1/0" in warnings[0]
    assert "not-logged-pw" not in caplog.text
