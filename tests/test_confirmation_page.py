"""``--confirm human``: only a person approves, on a confirmation page no client can click for it.

Through real MCP clients in both protocol eras (in process, the pages on the loopback listener; over
HTTP, beside the MCP endpoint), a person approving by plain HTTP form posts (the browser test does
it with Chromium). Each attacker case plays the attack and checks that nothing was deleted: a client
that accepts without the page, a wrong name, a replayed post, an expired page, another principal's
approval, a post without the CSRF token or from another site, an address guessed from another.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from redu_mcp.api import KINDS
from redu_mcp.sandbox import Account, Sandbox
from redu_mcp.server.approvals import Approvals, Subject
from redu_mcp.server.http import _page_listener
from redu_mcp.sharing import Sealer
from tests.confirmation_pages import (
    SHORT_LIFE,
    PageClient,
    csrf_of,
    human_server,
    origin_of,
    post_page,
    read_page,
    typing,
    use_page,
)
from tests.helpers import ALICE, BOB, CREATE_ARGS, MCP_HEADERS, REPO, connect, seed_instance, serving_mcp_http
from tests.replicas import RedisServer

TOKEN = "page-test-token-0123456789abcdef"
STATE_KEY = secrets.token_hex(32)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- a person approves -----------------------------------------------------------------------------------


async def test_a_person_approves_on_the_page_and_only_then_it_is_deleted(
    sandbox, make_settings, mode, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="mcp")  # as setup_logging caps the SDK (it logs payloads at DEBUG)
    id = await seed_instance(sandbox, "database", "precious")
    audit = tmp_path / "audit.jsonl"
    server, _ = human_server(sandbox, make_settings(confirm="human", audit_log=str(audit)))
    before_the_post: list[bool] = []

    async def person(url: str) -> httpx2.Response:
        before_the_post.append(sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0)
        return await use_page(url, "precious")

    pages = PageClient(person=person)
    async with connect(server, mode, elicitation_callback=pages) as client:
        result = await client.call_tool("delete_database", {"id": id, "confirm_name": "precious"})
    [approved] = await pages.finished()
    assert approved.status_code == 200 and "Approved" in approved.text
    assert before_the_post == [True]  # the call waited for the page
    assert result.structured_content["deleted"] is True and not sandbox.store.exists("database", id)
    assert pages.forms == 0 and len(pages.urls) == 1
    assert pages.urls[0].startswith("http://127.0.0.1:") and "/confirm/" in pages.urls[0]  # the loopback listener
    assert "Delete PostgreSQL database 'precious' (id 1)?" in pages.messages[0]
    assert "Accepting without using the page approves nothing" in pages.messages[0]
    confirmed = [r for r in lines(audit) if r["outcome"] == "confirmed"]
    assert [r["detail"] for r in confirmed] == ["by a person on the confirmation page"]
    token = pages.urls[0].rsplit("/", 1)[1]  # the page's address is a capability: written nowhere
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx2")  # not the person's requests
    assert token not in audit.read_text() and token not in logged


async def test_the_page_shows_what_would_be_destroyed_and_runs_no_script(sandbox, make_settings):
    id = await seed_instance(sandbox, "redis", "sessions")
    server, _ = human_server(sandbox, make_settings(confirm="human"))
    shown: list[httpx2.Response] = []

    async def person(url: str) -> httpx2.Response:
        shown.append(await read_page(url))
        return await use_page(url, "sessions")

    pages = PageClient(person=person)
    async with connect(server, elicitation_callback=pages) as client:
        await client.call_tool("delete_redis", {"id": id})
    await pages.finished()
    page = shown[0]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for fact in ("Redis instance", "sessions", f"<dd>{id}</dd>", "permanently delete", "expires at"):
        assert fact in page.text
    assert "<script" not in page.text.lower() and "src=" not in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"


# --- attackers: nothing is deleted --------------------------------------------------------------------------


async def test_a_client_that_accepts_without_the_page_deletes_nothing(sandbox, make_settings, mode):
    id = await seed_instance(sandbox, "database", "precious")
    server, _ = human_server(sandbox, make_settings(confirm="human"), lifetime=SHORT_LIFE)
    pages = PageClient()  # an auto-approving client: it says yes to everything, and opens nothing
    progress: list[str | None] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with connect(server, mode, elicitation_callback=pages) as client:
        arguments = {"id": id, "confirm_name": "precious"}
        result = await client.call_tool("delete_database", arguments, progress_callback=on_progress)
        later = await read_page(pages.urls[0])  # expired: it cannot be used later either
    assert progress and all("Waiting for a person to approve on the confirmation page" in (m or "") for m in progress)
    message = result.structured_content["message"]
    assert result.structured_content["deleted"] is False and not result.is_error
    assert "no person approved it on its confirmation page" in message
    assert "call delete_database again" in message and "use the page their client opens" in message
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0
    assert later.status_code == 404


async def test_the_page_approves_what_it_showed_only(sandbox, make_settings, mode):
    """Renamed while the page was open: the call goes on with what exists now, which nobody approved."""
    id = await seed_instance(sandbox, "database", "precious")
    server, _ = human_server(sandbox, make_settings(confirm="human"))

    async def person(url: str) -> httpx2.Response:
        page = await read_page(url)
        sandbox.store.record("database", id).public["name"] = "renamed"
        return await post_page(url, {"csrf": csrf_of(page), "name": "precious"})

    pages = PageClient(person=person)
    async with connect(server, mode, elicitation_callback=pages) as client:
        result = await client.call_tool("delete_database", {"id": id})
    [approved] = await pages.finished()
    assert approved.status_code == 200  # the person approved deleting 'precious'...
    assert result.structured_content["deleted"] is False  # ...which is not what id 1 is any more
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0


async def test_a_decline_closes_the_page(sandbox, make_settings, mode):
    id = await seed_instance(sandbox, "database", "precious")
    server, _ = human_server(sandbox, make_settings(confirm="human"))
    pages = PageClient(action="decline")
    async with connect(server, mode, elicitation_callback=pages) as client:
        result = await client.call_tool("delete_database", {"id": id})
        late = await read_page(pages.urls[0])
    assert result.structured_content["deleted"] is False and "declined" in result.structured_content["message"]
    assert late.status_code == 410 and "already used" in late.text
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0


async def test_a_wrong_name_approves_nothing(sandbox, make_settings):
    id = await seed_instance(sandbox, "database", "precious")
    server, _ = human_server(sandbox, make_settings(confirm="human"))
    seen: list[tuple[int, int, str]] = []

    async def mistyped_then_right(url: str) -> None:
        page = await read_page(url)
        wrong = await post_page(url, {"csrf": csrf_of(page), "name": "precious-other"})
        still = await read_page(url)  # still waiting for the right name: nothing was approved
        seen.append((wrong.status_code, still.status_code, still.text))
        await use_page(url, "precious")

    pages = PageClient(person=mistyped_then_right)
    async with connect(server, elicitation_callback=pages) as client:
        result = await client.call_tool("delete_database", {"id": id})
    await pages.finished()
    [(wrong, still, text)] = seen
    assert wrong == 422 and still == 200 and 'name="csrf"' in text
    assert result.structured_content["deleted"] is True  # the person then typed it right


async def test_a_replayed_post_approves_nothing_more(sandbox, make_settings):
    first, second = [await seed_instance(sandbox, "database", name) for name in ("first", "second")]
    server, _ = human_server(sandbox, make_settings(confirm="human"), lifetime=SHORT_LIFE)
    forms: list[dict[str, str]] = []

    async def person(url: str) -> httpx2.Response:
        forms.append({"csrf": csrf_of(await read_page(url)), "name": "first"})
        return await post_page(url, forms[-1])

    async def replaying(url: str) -> httpx2.Response:
        return await post_page(url, {**forms[0], "name": "second"})  # the first page's form, on the next page

    pages = PageClient(person=person)
    async with connect(server, elicitation_callback=pages) as client:
        deleted = await client.call_tool("delete_database", {"id": first})
        [approved] = await pages.finished()
        again = await post_page(pages.urls[0], forms[0])  # the same post, to the same page
        pages.person = replaying
        refused = await client.call_tool("delete_database", {"id": second})
        [replayed] = await pages.finished()
    assert approved.status_code == 200 and deleted.structured_content["deleted"] is True
    assert again.status_code == 409 and "already used" in again.text
    assert replayed.status_code == 403  # each page has its own CSRF token
    assert refused.structured_content["deleted"] is False and sandbox.store.exists("database", second)
    assert sandbox.count("DELETE") == 1


async def test_an_expired_page_approves_nothing(sandbox, make_settings, mode):
    id = await seed_instance(sandbox, "database", "precious")
    server, runtime = human_server(sandbox, make_settings(confirm="human"))
    posted: list[httpx2.Response] = []

    async def too_late(url: str) -> None:
        page = await read_page(url)
        runtime.approvals.clock = lambda: time.time() + runtime.approvals.lifetime  # five minutes later
        posted.append(await post_page(url, {"csrf": csrf_of(page), "name": "precious"}))

    pages = PageClient(person=too_late)
    async with connect(server, mode, elicitation_callback=pages) as client:
        result = await client.call_tool("delete_database", {"id": id})
    await pages.finished()
    assert posted[0].status_code == 404
    assert (
        result.structured_content["deleted"] is False
        and "no person approved it" in result.structured_content["message"]
    )
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0


# --- over HTTP: the page beside the MCP endpoint -------------------------------------------------------------

#: A client that takes form and URL elicitations (what mcp.Client declares), and one that takes forms only.
URL_AND_FORM = {"elicitation": {"form": {}, "url": {}}}
FORM_ONLY = {"elicitation": {"form": {}}}


def http_settings(make_settings, **overrides: Any):
    return make_settings(**{"transport": "http", "auth_token": TOKEN, "confirm": "human", **overrides})


async def rpc(
    url: str, bearer: str, arguments: dict[str, Any], capabilities: dict[str, Any] = URL_AND_FORM, **params: Any
) -> dict[str, Any]:
    """One raw 2026-07-28 ``tools/call`` of delete_database (no session); its JSON-RPC answer."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "delete_database", "arguments": arguments, "_meta": meta, **params},
    }
    headers = {
        **MCP_HEADERS,
        "authorization": f"Bearer {bearer}",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "delete_database",
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(url, headers=headers, content=json.dumps(body))
    data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
    answer: dict[str, Any] = json.loads(data[-1] if data else response.text)
    return answer


def page_request(answer: dict[str, Any]) -> tuple[str, str]:
    """The page's URL and the sealed request state of an ``input_required`` answer."""
    result = answer["result"]
    assert result["resultType"] == "input_required", answer
    [request] = result["inputRequests"].values()
    assert request["params"]["mode"] == "url"
    return request["params"]["url"], result["requestState"]


@asynccontextmanager
async def mcp_client(url: str, mode: str, callback: Any, bearer: str = TOKEN) -> AsyncIterator[Client]:
    """``mcp.Client`` over streamable HTTP with ``callback`` answering elicitations."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=30)
    async with (
        http,
        Client(streamable_http_client(url, http_client=http), mode=mode, elicitation_callback=callback) as c,
    ):
        yield c


async def test_over_http_the_page_is_beside_the_mcp_endpoint_and_needs_no_token(make_settings, sandbox, mode):
    id = await seed_instance(sandbox, "database", "precious")
    pages = PageClient(person=typing("precious"))  # the person's requests carry no bearer token: a browser has none
    async with serving_mcp_http(http_settings(make_settings), sandbox) as (url, _):
        async with mcp_client(url, mode, pages) as client:
            result = await client.call_tool("delete_database", {"id": id})
    [approved] = await pages.finished()
    assert pages.urls[0].startswith(f"{url}/confirm/")
    assert approved.status_code == 200
    assert result.structured_content["deleted"] is True and not sandbox.store.exists("database", id)


async def test_forged_cross_site_and_guessed_posts_approve_nothing(make_settings, sandbox):
    id = await seed_instance(sandbox, "database", "precious")
    web_client = "https://app.example.test"  # a browser origin the operator allows for MCP web clients
    settings = http_settings(make_settings, allowed_origins=(web_client,))
    said: dict[str, int] = {}

    async def attacker(url: str) -> None:
        page = await read_page(url)
        right = {"csrf": csrf_of(page), "name": "precious"}
        said["without the CSRF token"] = (await post_page(url, {"name": "precious"})).status_code
        said["with another token"] = (await post_page(url, {**right, "csrf": "0" * 64})).status_code
        said["from an allowed web client"] = (await post_page(url, right, {"origin": web_client})).status_code
        said["a cross-site fetch"] = (await post_page(url, right, {"sec-fetch-site": "cross-site"})).status_code
        async with httpx2.AsyncClient() as http:
            as_json = await http.post(url, json=right, headers={"origin": origin_of(url)})
        said["not a form"] = as_json.status_code
        guessed = url[:-1] + ("A" if url[-1] != "A" else "B")
        said["a guessed address"] = (await read_page(guessed)).status_code
        said["a post to it"] = (await post_page(guessed, right)).status_code
        said["another token's address"] = (
            await read_page(url.rsplit("/", 1)[0] + "/" + secrets.token_urlsafe(32))
        ).status_code
        said["the page afterwards"] = (await read_page(url)).status_code  # still pending: nothing approved

    pages = PageClient(person=attacker)
    async with serving_mcp_http(settings, sandbox) as (url, runtime):
        runtime.approvals.lifetime = SHORT_LIFE
        async with mcp_client(url, "auto", pages) as client:
            result = await client.call_tool("delete_database", {"id": id})
    await pages.finished()
    assert said == {
        "without the CSRF token": 403,
        "with another token": 403,
        "from an allowed web client": 403,
        "a cross-site fetch": 403,
        "not a form": 403,
        "a guessed address": 404,
        "a post to it": 403,
        "another token's address": 404,
        "the page afterwards": 200,
    }
    assert result.structured_content["deleted"] is False
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0


async def test_a_client_that_only_fills_forms_is_refused_under_human(make_settings, sandbox):
    """The hole this closes: an auto-approving client answers a form itself. Under human no form is asked."""
    id = await seed_instance(sandbox, "database", "precious")
    async with serving_mcp_http(http_settings(make_settings), sandbox) as (url, _):
        answer = await rpc(url, TOKEN, {"id": id, "confirm_name": "precious"}, capabilities=FORM_ONLY)
    result = answer["result"]
    assert result.get("resultType") != "input_required"  # not asked: a yes from it would prove nothing
    message = result["structuredContent"]["message"]
    assert result["structuredContent"]["deleted"] is False
    assert "only a person may approve a delete (--confirm human)" in message and "URL-mode elicitation" in message
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0


async def test_another_principals_approval_is_never_used(make_settings, tmp_path):
    """Two keys of one account (the SDK binds request state to the account, so Bob can replay Alice's
    round): the approval a person gave Alice's call is hers alone."""
    team = Account("usr_team", "team", "team@example.com")
    sandbox = Sandbox(api_keys={ALICE: team, BOB: team}, provisioning_seconds=0.2)
    async with sandbox.client(api_key=ALICE) as api:
        body = KINDS["database"].create_body(
            name="precious", flavor_id="1", network_id="net-private", keypair_name="default-key"
        )
        id = (await api.create_instance(KINDS["database"], body)).id
    settings = make_settings(
        transport="http", auth_passthrough=True, confirm="human", sandbox=False, api_url=sandbox.base_url
    )
    async with serving_mcp_http(settings, sandbox) as (url, _):
        page, state = page_request(await rpc(url, ALICE, {"id": id}))
        assert (await use_page(page, "precious")).status_code == 200  # a person approves Alice's call
        answer = {"redu-mcp/confirmation-page": {"action": "accept"}}
        bob = await rpc(url, BOB, {"id": id}, inputResponses=answer, requestState=state)
    result = bob["result"]["structuredContent"]
    assert result["deleted"] is False and "no person approved it" in result["message"]
    assert sandbox.store.exists("database", id) and sandbox.count("DELETE") == 0


# --- without HTTP: the loopback listener; over stdio ----------------------------------------------------------


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


async def test_the_loopback_listener_answers_only_its_own_address_and_stops_when_idle(
    sandbox, make_settings, monkeypatch
):
    monkeypatch.setattr(_page_listener, "GRACE", 0.0)
    id = await seed_instance(sandbox, "database", "precious")
    server, _ = human_server(sandbox, make_settings(confirm="human"), lifetime=SHORT_LIFE)
    rebound: list[int] = []

    async def rebinding_page(url: str) -> None:  # another site's page, its name rebound to 127.0.0.1
        port = urlsplit(url).port
        async with httpx2.AsyncClient() as http:
            response = await http.get(url, headers={"host": f"attacker.example:{port}"})
        rebound.append(response.status_code)

    pages = PageClient(person=rebinding_page)
    async with connect(server, elicitation_callback=pages) as client:
        result = await client.call_tool("delete_database", {"id": id})
        port = urlsplit(pages.urls[0]).port
        assert port is not None
        with anyio.fail_after(10):
            while listening(port):  # its only page expired: it stops on its own
                await anyio.sleep(0.05)
    await pages.finished()
    assert rebound == [421]
    assert result.structured_content["deleted"] is False and sandbox.count("DELETE") == 0


async def test_over_stdio_a_person_approves_on_the_loopback_page(tmp_path):
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "redu_mcp", "--sandbox", "--confirm", "human", "--provisioning-seconds", "0.2", "--log-level", "WARNING"],
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
        cwd=str(REPO),
    )  # fmt: skip
    pages = PageClient(person=typing("over-stdio"))
    async with Client(server, elicitation_callback=pages) as client:
        created = await client.call_tool("create_database", dict(CREATE_ARGS, name="over-stdio"))
        id = created.structured_content["instance"]["id"]
        deleted = await client.call_tool("delete_database", {"id": id})
        gone = await client.call_tool("get_database", {"id": id})
    [approved] = await pages.finished()
    assert pages.urls[0].startswith("http://127.0.0.1:") and approved.status_code == 200
    assert deleted.structured_content["deleted"] is True and gone.is_error


# --- the approvals themselves --------------------------------------------------------------------------------

SUBJECT = Subject("delete", "PostgreSQL database", 7, "orders", "Delete it?", None)


async def test_an_approval_is_used_once_by_the_principal_who_opened_it():
    approvals = Approvals(None, Sealer.ephemeral())
    approval = await approvals.open(SUBJECT, "alice")
    assert await approvals.use(approval.token, "alice") is None  # nobody approved it yet
    assert await approvals.approve(approval.token) and not await approvals.approve(approval.token)
    assert await approvals.use(approval.token, "bob") is None  # another principal: refused, and nothing spent
    assert await approvals.use(approval.token, "alice") == approval
    assert await approvals.use(approval.token, "alice") is None  # once
    assert await approvals.find(approval.token) == (approval, "used")


async def test_an_expired_approval_is_neither_approved_nor_used():
    approvals = Approvals(None, Sealer.ephemeral())
    approval = await approvals.open(SUBJECT, "alice")
    assert await approvals.approve(approval.token)
    approvals.clock = lambda: approval.expires_at  # the moment it expires
    assert await approvals.find(approval.token) is None and await approvals.use(approval.token, "alice") is None


# --- replicas: the pending approval lives in Redis ------------------------------------------------------------


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed: .ci/install-os-packages.sh installs it")
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def replica_settings(make_settings, redis: RedisServer, **overrides: Any):
    return http_settings(make_settings, state_keys=(STATE_KEY,), redis_url=redis.url, **overrides)


async def test_across_replicas_the_page_and_the_call_meet_in_redis(make_settings, sandbox, redis):
    id = await seed_instance(sandbox, "database", "precious")
    async with (
        serving_mcp_http(replica_settings(make_settings, redis), sandbox) as (url_a, _),
        serving_mcp_http(replica_settings(make_settings, redis), sandbox) as (url_b, _),
    ):
        on_b = urlsplit(url_b).netloc

        async def person_on_b(url: str) -> httpx2.Response:  # the balancer sent the browser to the other replica
            return await use_page(urlsplit(url)._replace(netloc=on_b).geturl(), "precious")

        pages = PageClient(person=person_on_b)
        async with mcp_client(url_a, "auto", pages) as client:
            result = await client.call_tool("delete_database", {"id": id})
        [approved] = await pages.finished()
        stored = redis_values(redis)
    assert approved.status_code == 200 and result.structured_content["deleted"] is True
    assert stored and not any("precious" in value for value in stored)  # encrypted: no name, no statement


async def test_two_replicas_using_one_approval_at_once_use_it_once(redis):
    """Two calls that both carry the approval, on two replicas at the same moment: one goes ahead."""
    from redu_mcp.sharing import SharedRedis

    replicas = [Approvals(SharedRedis(redis.url, namespace="race", sealer=Sealer([STATE_KEY])), Sealer([STATE_KEY]))]
    replicas.append(
        Approvals(SharedRedis(redis.url, namespace="race", sealer=Sealer([STATE_KEY])), Sealer([STATE_KEY]))
    )
    try:
        approval = await replicas[0].open(SUBJECT, "alice")
        assert await replicas[1].approve(approval.token)
        results: list[Any] = []

        async def use(approvals: Approvals) -> None:
            results.append(await approvals.use(approval.token, "alice"))

        async with anyio.create_task_group() as tg:
            for approvals in replicas * 4:
                tg.start_soon(use, approvals)
    finally:
        for approvals in replicas:
            assert approvals.shared is not None
            await approvals.shared.aclose()
    assert [r for r in results if r is not None] == [approval]


def redis_values(redis: RedisServer) -> list[str]:
    import redis as redis_py

    with redis_py.Redis.from_url(redis.url, decode_responses=True) as r:
        return [r.get(key) or "" for key in r.scan_iter("redu-mcp:*page-*")]


async def test_a_mark_forged_in_redis_approves_nothing(make_settings, sandbox, redis):
    import redis as redis_py

    id = await seed_instance(sandbox, "database", "precious")
    after: list[int] = []

    async def forger(url: str) -> None:  # whoever can write to Redis, but has no state key
        with redis_py.Redis.from_url(redis.url, decode_responses=True) as r:
            [record] = r.keys("redu-mcp:*:page-page:*")
            r.set(record.replace(":page-page:", ":page-approved:"), "1")
        after.append((await read_page(url)).status_code)

    pages = PageClient(person=forger)
    async with serving_mcp_http(replica_settings(make_settings, redis), sandbox) as (url, runtime):
        runtime.approvals.lifetime = SHORT_LIFE
        async with mcp_client(url, "auto", pages) as client:
            result = await client.call_tool("delete_database", {"id": id})
    await pages.finished()
    assert after == [200]  # still pending: an unsealed mark is no mark
    assert result.structured_content["deleted"] is False and sandbox.count("DELETE") == 0


async def test_without_redis_no_page_is_opened_or_trusted(make_settings, sandbox, redis):
    id = await seed_instance(sandbox, "database", "precious")
    pages = PageClient(person=typing("precious"))
    async with serving_mcp_http(replica_settings(make_settings, redis), sandbox) as (url, _):
        redis.stop()
        async with mcp_client(url, "auto", pages) as client:
            result = await client.call_tool("delete_database", {"id": id})
    message = result.structured_content["message"]
    assert result.structured_content["deleted"] is False and "could not open or check a confirmation page" in message
    assert pages.urls == [] and sandbox.count("DELETE") == 0


# --- what the model is told ------------------------------------------------------------------------------------

DESTROYING = ("delete_database", "delete_redis", "run_sql", "apply_migration", "run_redis_command")


async def test_under_human_the_texts_say_a_person_approves_on_a_page(make_server):
    texts: dict[str, tuple[dict[str, str], str]] = {}
    for confirm in ("human", "auto"):
        async with connect(make_server(confirm=confirm, data="write")) as client:
            tools = {tool.name: tool.description or "" for tool in (await client.list_tools()).tools}
            texts[confirm] = tools, client.instructions or ""
    tools, instructions = texts["human"]
    for name in DESTROYING:
        said = tools[name]
        assert "only a person approves it on a confirmation page" in said and "URL-mode elicitation" in said
        assert "approves nothing" in said and "cannot open such a page is refused" in said
    assert "(--confirm human)" in instructions and "confirmation page" in instructions
    assert "with confirm_name set to the exact current name" not in instructions  # not how a delete goes here
    tools, instructions = texts["auto"]
    assert not any("confirmation page" in tools[name] for name in DESTROYING)
    assert "confirmation page" not in instructions
