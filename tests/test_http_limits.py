"""One caller cannot take the server from everyone else.

The review found that ~10,000 ``initialize`` calls in a minute filled the SDK's global session table
(everyone else then got 503) and took 471 MB; under pass-through any Redu account could do it. Now
each *principal* (everyone holding the operator token is one; under pass-through, each Redu user)
has its own caps, enforced before the SDK sees the request (``redu_mcp.server.http._limits``):

* at most ``max_sessions_per_principal`` open sessions (429 with ``Retry-After`` beyond),
* at most ``new_sessions_per_minute`` new ones (429 with ``Retry-After`` beyond),
* idle sessions are closed after ``session_idle_seconds`` and their slots freed,
* the SDK's global cap (``max_sessions``) stays as a backstop (503).

Attacks run against a real uvicorn on a loopback port: alice floods, bob must still get in.
"""

from __future__ import annotations

import anyio
import httpx2
import pytest

from redu_mcp.server.settings import HttpLimits
from tests.helpers import ALICE, BOB, CREATE_ARGS, INITIALIZE, MCP_HEADERS, http_client, serving_mcp_http, two_users

LEGACY = "2025-11-25"


def passthrough(make_settings, **limits):
    return make_settings(transport="http", auth_passthrough=True, http_limits=HttpLimits(**limits))


async def open_session(http: httpx2.AsyncClient, url: str, key: str) -> httpx2.Response:
    """A handshake-era ``initialize`` (the request that opens a session) with ``key`` as bearer."""
    return await http.post(url, headers={**MCP_HEADERS, "authorization": f"Bearer {key}"}, json=INITIALIZE)


async def end_session(http: httpx2.AsyncClient, url: str, key: str, session_id: str) -> httpx2.Response:
    headers = {"authorization": f"Bearer {key}", "mcp-session-id": session_id, "mcp-protocol-version": LEGACY}
    return await http.delete(url, headers=headers)


async def use_session(http: httpx2.AsyncClient, url: str, key: str, session_id: str) -> httpx2.Response:
    headers = {
        **MCP_HEADERS,
        "authorization": f"Bearer {key}",
        "mcp-session-id": session_id,
        "mcp-protocol-version": LEGACY,
    }
    return await http.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})


def assert_refused(response: httpx2.Response, words: str) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and words in body["error"]["message"]


async def second_user_still_works(url: str) -> None:
    for mode in ("auto", "legacy"):
        async with http_client(url, mode, BOB) as bob:
            assert (await bob.call_tool("whoami", {})).structured_content["user"]["username"] == "bob"
            assert not (await bob.call_tool("list_create_options", {})).is_error


async def test_a_flood_of_sessions_from_one_principal_leaves_room_for_another(make_settings, caplog):
    """Hundreds of concurrent ``initialize`` from alice: exactly her cap get through (no race past it),
    the rest get 429 with ``Retry-After`` and a JSON body; bob initializes and calls tools as usual.
    The flood is one warning in the log, not one per request."""
    settings = passthrough(make_settings, max_sessions_per_principal=5, new_sessions_per_minute=10_000)
    async with serving_mcp_http(settings, two_users()) as (url, _):
        limits = httpx2.Limits(max_connections=100)
        async with httpx2.AsyncClient(limits=limits, timeout=60) as http:
            answers: list[httpx2.Response] = []

            async def flood() -> None:
                answers.append(await open_session(http, url, ALICE))

            async with anyio.create_task_group() as tg:
                for _ in range(300):
                    tg.start_soon(flood)
            opened = [a.headers["mcp-session-id"] for a in answers if a.status_code == 200]
            assert len(opened) == 5
            refused = [a for a in answers if a.status_code != 200]
            assert len(refused) == 295
            for answer in refused:
                assert_refused(answer, "Too many open sessions")
            warnings = [r.getMessage() for r in caplog.records if "refused new sessions" in r.getMessage()]
            assert warnings == ["refused new sessions for principal 'usr_alice': at its sessions limit (5)"]
            assert ALICE not in caplog.text  # the principal is named by its user id, never by its key

            await second_user_still_works(url)

            # Bob cannot free alice's slots (nor learn anything): her session is not his to end.
            assert (await end_session(http, url, BOB, opened[0])).status_code == 404
            assert_refused(await open_session(http, url, ALICE), "Too many open sessions")
            # Alice ending one of her own sessions frees exactly one slot.
            assert (await end_session(http, url, ALICE, opened[0])).status_code in (200, 202, 204)
            assert (await use_session(http, url, ALICE, opened[0])).status_code == 404
            assert (await open_session(http, url, ALICE)).status_code == 200
            assert_refused(await open_session(http, url, ALICE), "Too many open sessions")
            # Her open sessions keep working meanwhile.
            assert (await use_session(http, url, ALICE, opened[1])).status_code == 200

        # The 2026-07-28 era opens no session, so the cap does not stand in its way.
        async with http_client(url, "auto", ALICE) as alice:
            assert (await alice.call_tool("whoami", {})).structured_content["user"]["username"] == "alice"


async def test_the_rate_of_new_sessions_is_bounded_per_principal(make_settings):
    """Opening and ending sessions in a loop (never holding many) still stops at the per-minute rate."""
    settings = passthrough(make_settings, max_sessions_per_principal=100, new_sessions_per_minute=4)
    async with serving_mcp_http(settings, two_users()) as (url, _), httpx2.AsyncClient(timeout=30) as http:
        for _ in range(4):
            opened = await open_session(http, url, ALICE)
            assert opened.status_code == 200
            assert (await end_session(http, url, ALICE, opened.headers["mcp-session-id"])).status_code < 300
        assert_refused(await open_session(http, url, ALICE), "Too many new sessions")
        await second_user_still_works(url)


async def test_idle_sessions_are_reaped_and_their_slots_come_back(make_settings):
    """Sessions left open and unused close after the idle timeout (the SDK's and ours agree), and the
    principal may open new ones. Waits for it to happen; asserts nothing about how long it took."""
    settings = passthrough(
        make_settings, max_sessions_per_principal=2, new_sessions_per_minute=10_000, session_idle_seconds=0.5
    )
    async with serving_mcp_http(settings, two_users()) as (url, _), httpx2.AsyncClient(timeout=30) as http:
        first = [(await open_session(http, url, ALICE)).headers["mcp-session-id"] for _ in range(2)]
        assert_refused(await open_session(http, url, ALICE), "Too many open sessions")
        with anyio.fail_after(30):
            while (again := await open_session(http, url, ALICE)).status_code != 200:
                assert_refused(again, "Too many open sessions")
                await anyio.sleep(0.1)
        for session_id in first:
            assert (await use_session(http, url, ALICE, session_id)).status_code == 404


async def test_a_session_in_use_is_not_idle(make_settings):
    """The idle clock stops while a request is in flight, as the SDK's does: during a long call, longer
    than the idle timeout, the session stays (it still answers) and its slot stays taken."""
    settings = passthrough(
        make_settings, max_sessions_per_principal=1, new_sessions_per_minute=10_000, session_idle_seconds=0.3
    )
    sandbox = two_users(provisioning_seconds=600)  # never ready while the test runs: the wait stays in flight
    async with serving_mcp_http(settings, sandbox) as (url, _), httpx2.AsyncClient(timeout=60) as http:
        async with http_client(url, "auto", ALICE) as alice:
            made = await alice.call_tool("create_redis", dict(CREATE_ARGS, name="slow-one"))
        opened = await open_session(http, url, ALICE)
        session_id = opened.headers["mcp-session-id"]
        headers = {**MCP_HEADERS, "authorization": f"Bearer {ALICE}", "mcp-session-id": session_id,
                   "mcp-protocol-version": LEGACY}  # fmt: skip
        await http.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        wait = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {
                "name": "wait_for_ready",
                "arguments": {"kind": "redis", "id": made.structured_content["instance"]["id"], "timeout_seconds": 30},
                "_meta": {"progressToken": "p"},
            },
        }
        async with http.stream("POST", url, headers=headers, json=wait) as waiting:
            assert waiting.status_code == 200
            lines = waiting.aiter_lines()
            while "notifications/progress" not in await anext(lines):  # the wait is polling now
                pass
            await anyio.sleep(1.0)  # > the idle timeout, with only the wait in flight
            assert (await use_session(http, url, ALICE, session_id)).status_code == 200
            assert_refused(await open_session(http, url, ALICE), "Too many open sessions")


async def test_the_global_cap_stays_as_a_backstop(make_settings):
    settings = passthrough(make_settings, max_sessions=3, max_sessions_per_principal=2, new_sessions_per_minute=100)
    async with serving_mcp_http(settings, two_users()) as (url, _), httpx2.AsyncClient(timeout=30) as http:
        assert [(await open_session(http, url, ALICE)).status_code for _ in range(2)] == [200, 200]
        assert (await open_session(http, url, BOB)).status_code == 200
        full = await open_session(http, url, BOB)
        assert full.status_code == 503 and "Too many open sessions" in full.text
        # The refused opening did not count against bob: once a slot is free, he gets in.
        async with http_client(url, "auto", BOB) as bob:
            assert not (await bob.call_tool("whoami", {})).is_error


@pytest.mark.parametrize("bad", [0, -1, True, float("nan")])
def test_limits_must_be_sane_numbers(bad):
    from redu_mcp.server.settings import ConfigError

    with pytest.raises(ConfigError, match="max_sessions_per_principal"):
        HttpLimits(max_sessions_per_principal=bad)
    if not isinstance(bad, bool):
        with pytest.raises(ConfigError, match="session_idle_seconds"):
            HttpLimits(session_idle_seconds=bad)
