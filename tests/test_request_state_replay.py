"""A sealed request state answers one round, once: a person's "no" cannot be replayed as "yes".

In the 2026-07-28 protocol a delete's question travels in the result, sealed with the server's key,
and the client sends the answer back with that state. The SDK checks the seal, expiry and binding;
a round already decided must not be sendable again with another answer. Real uvicorn, real
``mcp.Client``s; the attacker captures the declined answering round off the wire and resends it with
"accept", to the same replica or (sharing Redis) to another one.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitResult

from redu_mcp.sandbox import Sandbox
from tests.helpers import seed_instance, serving_mcp_http
from tests.replicas import RedisServer

TOKEN = "replay-test-token-" + "0123456789abcdef"
KEY = secrets.token_hex(32)


class Capture(httpx2.AsyncBaseTransport):
    """Passes requests on; keeps the answering round of a call (its headers and JSON body)."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.answer: tuple[dict[str, str], dict[str, Any]] | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content or b"{}")
        if "inputResponses" in (body.get("params") or {}):
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "host")}
            self.answer = (headers, body)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def decline(context: Any, params: Any) -> ElicitResult:
    return ElicitResult(action="decline")


def as_accept(body: dict[str, Any]) -> dict[str, Any]:
    """The same round (same sealed requestState), its answer turned into "accept, confirm: true"."""
    forged = json.loads(json.dumps(body))
    params = forged["params"]
    params["inputResponses"] = {
        key: {"action": "accept", "content": {"confirm": True}} for key in params["inputResponses"]
    }
    forged["id"] = 4242
    return forged


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


async def replay_declined_delete(make_settings, sandbox: Sandbox, second: dict[str, Any] | None = None, **options):
    """Decline a delete on one replica, replay the declined round with "accept" (on ``second``, if
    given, a second replica's settings); returns the replay's answer text and the instance's id."""
    first = make_settings(transport="http", auth_token=TOKEN, stateless=True, state_keys=(KEY,), **options)
    id = await seed_instance(sandbox, "database", "keep-me")
    capture = Capture()
    async with serving_mcp_http(first, sandbox) as (url_a, _):
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, transport=capture)
        async with http, Client(streamable_http_client(url_a, http_client=http), elicitation_callback=decline) as c:
            result = await c.call_tool("delete_database", {"id": id})
        assert result.structured_content["deleted"] is False  # the person said no
        assert capture.answer is not None
        headers, body = capture.answer
        target = url_a
        if second is not None:
            other = make_settings(transport="http", auth_token=TOKEN, stateless=True, state_keys=(KEY,), **second)
            async with serving_mcp_http(other, sandbox) as (url_b, _):
                async with httpx2.AsyncClient(timeout=30) as raw:
                    replay = await raw.post(url_b, headers=headers, content=json.dumps(as_accept(body)))
                return replay.text, id
        async with httpx2.AsyncClient(timeout=30) as raw:
            replay = await raw.post(target, headers=headers, content=json.dumps(as_accept(body)))
        return replay.text, id


async def test_a_declined_round_replayed_with_accept_deletes_nothing(make_settings, sandbox: Sandbox):
    answer, id = await replay_declined_delete(make_settings, sandbox)
    assert "Invalid or expired requestState" in answer
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0


async def test_the_replay_is_refused_by_another_replica_sharing_redis(make_settings, sandbox: Sandbox, redis):
    answer, id = await replay_declined_delete(
        make_settings, sandbox, second={"redis_url": redis.url}, redis_url=redis.url
    )
    assert "Invalid or expired requestState" in answer
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0
