"""Pass-through auth under attack: every bearer is a Redu API key checked with ``GET /v1/me``.

The review found that a non-ASCII bearer crashed verification (HTTP 500 with a traceback), and that
every unknown bearer cost one upstream ``GET /v1/me`` with no cache and no limit. Now:

* a malformed bearer (non-ASCII, control characters, blanks, over-long) is 401 unread: no upstream
  call, no traceback;
* a refused key is remembered briefly: asking again within the window costs nothing upstream;
* concurrent requests with one unknown key share one check;
* upstream checks are rate-limited per client address: past the budget, 429 with ``Retry-After`` and
  no upstream call (known keys keep working);
* an API that cannot answer makes the endpoint answer 503 with ``Retry-After``, never 401 (the key
  may well be good), and the outage is not remembered.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx2
import pytest

from redu_mcp.server.http._settings import MAX_BEARER_LENGTH, HttpLimits
from tests.helpers import ALICE, BOB, http_client, raw_post, serving_mcp_http, two_users

ME = ("GET", "/v1/me")


def passthrough(make_settings, **limits: Any):
    return make_settings(transport="http", auth_passthrough=True, http_limits=HttpLimits(**limits))


async def raw_request(url: str, authorization: bytes) -> tuple[int, bytes]:
    """A POST sent byte for byte over a socket: httpx2 refuses to send a non-ASCII header, attackers don't."""
    host_port = url.split("/")[2]
    host, port = host_port.rsplit(":", 1)
    body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",' \
           b'"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}'  # fmt: skip
    request = (
        b"POST /mcp HTTP/1.1\r\nHost: " + host_port.encode() + b"\r\n"
        b"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        b"Authorization: " + authorization + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(request)
        received = b""
        with anyio.fail_after(30):
            try:
                while chunk := await stream.receive():
                    received += chunk
            except anyio.EndOfStream:
                pass
    status = int(received.split(b" ", 2)[1])
    return status, received


MALFORMED = {
    "utf-8": "Bearer sk-live-süßes-token".encode(),
    "lone 0xff": b"Bearer \xff\xfe\xfd-token-0000000",
    "a control character": b"Bearer sk-live-\x01-token-00000",
    "an escape sequence": b"Bearer sk-live-\x1b[31m-token",
    "a tab inside": b"Bearer sk-live\tinside-token-000",
    "a blank inside": b"Bearer sk-live inside-token-000",
    "two blanks after Bearer": b"Bearer  sk-live-alice-1f2e3d4c5b6a7988",
    "over-long": b"Bearer " + b"k" * (MAX_BEARER_LENGTH + 1),
    "a megabyte-ish": b"Bearer " + b"k" * 60_000,
    "empty": b"Bearer ",
    "a DEL": b"Bearer sk-live-\x7f-token-0000000",
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_a_malformed_bearer_is_401_never_500_and_costs_nothing(make_settings, caplog, case):
    caplog.set_level(logging.DEBUG)
    sandbox = two_users()
    async with serving_mcp_http(passthrough(make_settings), sandbox) as (url, _):
        status, answer = await raw_request(url, MALFORMED[case])
        if case == "a megabyte-ish":
            assert status in (400, 401, 431)  # the HTTP parser may refuse such a header before we see it
        elif case == "empty":  # the parser drops the trailing blank: no credentials at all
            assert status == 401 and b'www-authenticate: Bearer realm="redu-mcp"\r\n' in answer
        else:
            assert status == 401, answer
            assert b'error="invalid_token"' in answer
        assert sandbox.count(*ME) == 0  # never sent upstream
        # The server is still fine, and nobody logged a traceback (or the bearer).
        assert (await raw_post(url, {"authorization": f"Bearer {ALICE}"})).status_code == 200
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]
    assert "süßes" not in caplog.text and "inside-token" not in caplog.text


async def test_a_refused_key_is_remembered_briefly(make_settings):
    sandbox = two_users()
    async with serving_mcp_http(passthrough(make_settings, rejected_key_seconds=30), sandbox) as (url, runtime):
        bad = {"authorization": "Bearer sk-live-nobody-000000000000"}
        assert (await raw_post(url, bad)).status_code == 401
        assert (await raw_post(url, bad)).status_code == 401
        assert sandbox.count(*ME) == 1  # the second time was answered from memory
        now = [runtime.clock() + 31]
        runtime.clock = lambda: now[0]
        assert (await raw_post(url, bad)).status_code == 401
        assert sandbox.count(*ME) == 2  # past the window it is asked again (a key may become valid)


async def test_concurrent_requests_with_one_unknown_key_share_one_check(make_settings):
    sandbox = two_users()
    sandbox.faults.add(method="GET", path="/v1/me", delay=0.3)  # the first check is slow
    async with serving_mcp_http(passthrough(make_settings), sandbox) as (url, _):
        statuses: list[int] = []

        async def ask(key: str) -> None:
            statuses.append((await raw_post(url, {"authorization": f"Bearer {key}"})).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(ask, "sk-live-nobody-000000000000")
        assert statuses == [401] * 20
        assert sandbox.count(*ME) == 1


async def test_many_bad_keys_from_one_client_hit_the_check_rate_limit(make_settings, caplog):
    """Guessing keys (or just sending junk) is bounded: past the budget no key is sent upstream."""
    sandbox = two_users()
    async with serving_mcp_http(passthrough(make_settings, key_checks_per_minute=5), sandbox) as (url, _):
        assert (await raw_post(url, {"authorization": f"Bearer {ALICE}"})).status_code == 200  # 1 check
        statuses = [
            (await raw_post(url, {"authorization": f"Bearer sk-live-guess-{n:012d}"})).status_code for n in range(4)
        ]
        assert statuses == [401] * 4 and sandbox.count(*ME) == 5
        for n in range(4, 30):
            refused = await raw_post(url, {"authorization": f"Bearer sk-live-guess-{n:012d}"})
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert "Too many credential checks" in refused.json()["error"]["message"]
        assert sandbox.count(*ME) == 5  # the flood cost nothing upstream
        # Known answers need no check: alice still works, a known-bad key is still a plain 401.
        async with http_client(url, "auto", ALICE) as alice:
            assert not (await alice.call_tool("whoami", {})).is_error
        assert (await raw_post(url, {"authorization": "Bearer sk-live-guess-000000000000"})).status_code == 401
        # A key not seen before waits its turn too (documented: the budget is the address's).
        assert (await raw_post(url, {"authorization": f"Bearer {BOB}"})).status_code == 429
    assert "sk-live-guess" not in caplog.text


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [
        (dict(status=503, retry_after="7"), "7"),
        (dict(status=502), "5"),
        (dict(status=429, retry_after="11"), "11"),
        (dict(drop=True), "5"),
    ],
    ids=["503", "502", "429", "dropped"],
)
async def test_an_api_outage_during_verification_is_503_with_retry_after_not_401(
    make_settings, caplog, fault, retry_after
):
    caplog.set_level(logging.DEBUG)
    sandbox = two_users()
    sandbox.faults.add(method="GET", path="/v1/me", times=-1, **fault)
    async with serving_mcp_http(passthrough(make_settings), sandbox) as (url, _):
        answer = await raw_post(url, {"authorization": f"Bearer {ALICE}"})
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == retry_after
        assert "www-authenticate" not in answer.headers  # not an auth failure: the key may be fine
        assert "could not verify" in answer.json()["error"]["message"]
        assert ALICE not in answer.text
        sandbox.faults.clear()
        # The outage was not remembered as a refusal: once the API answers, the key works.
        assert (await raw_post(url, {"authorization": f"Bearer {ALICE}"})).status_code == 200
    assert "could not verify a Redu API key" in caplog.text  # the operator hears of it…
    assert ALICE not in caplog.text and "Traceback" not in caplog.text  # …without the key


async def test_a_client_sees_the_outage_as_a_failed_connection_then_recovers(make_settings):
    sandbox = two_users()
    sandbox.faults.add(method="GET", path="/v1/me", status=503, times=-1)
    async with serving_mcp_http(passthrough(make_settings), sandbox) as (url, _):
        statuses: list[int] = []

        async def seen(response: httpx2.Response) -> None:
            statuses.append(response.status_code)

        with pytest.raises(BaseException):  # noqa: B017 - the SDK wraps it (MCPError in an ExceptionGroup)
            async with http_client(url, "auto", ALICE, event_hooks={"response": [seen]}) as client:
                await client.list_tools()
        assert 503 in statuses and 401 not in statuses
        sandbox.faults.clear()
        async with http_client(url, "legacy", ALICE) as client:
            assert not (await client.call_tool("whoami", {})).is_error
