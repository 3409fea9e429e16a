"""The sandbox itself: the API it emulates, its clock, its fault plan, its control surface, its server."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx2
import pytest

from redu_mcp import api as errors
from redu_mcp.api import DatabaseCreate, RedisCreate, ReduClient
from redu_mcp.sandbox import DEFAULT_API_KEY, Account, Fault, FaultPlan, ListStyle, Sandbox
from redu_mcp.sandbox.faults import MalformedBody
from redu_mcp.sandbox.serve import banner, base_url, running_sandbox
from tests.helpers import FAST_RETRY

UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "Invalid API key"}}
REFS = {"flavor_id": "1", "network_id": "net-private", "keypair_name": "default-key"}


class Clock:
    """A sandbox clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def raw(sandbox: Sandbox, key: str | None = DEFAULT_API_KEY) -> httpx2.AsyncClient:
    """Plain HTTP to the in-process sandbox, to see exactly what it answers."""
    headers = {"x-api-key": key} if key is not None else {}
    return httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.redu.invalid", headers=headers)


def db_json(name: str = "my-db", **fields: Any) -> dict[str, Any]:
    return {"name": name, **REFS, **fields}


@pytest.fixture
async def sandbox() -> Any:
    sb = Sandbox(provisioning_seconds=0)
    yield sb
    await sb.aclose()


# --- the emulated API -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
@pytest.mark.parametrize("path", ["/v1/me", "/v1/databases", "/v1/redis/1", "/_sandbox/requests", "/v1/nowhere"])
async def test_401_body_is_exactly_the_documented_one(sandbox: Sandbox, key: str | None, path: str) -> None:
    async with raw(sandbox, key) as http:
        response = await http.get(path)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["content-type"] == "application/json"


async def test_me_and_lookups(sandbox: Sandbox) -> None:
    async with raw(sandbox) as http:
        assert (await http.get("/v1/me")).json() == {
            "id": "usr_sandbox",
            "username": "sandbox",
            "email": "sandbox@example.com",
            "roles": ["user"],
        }
        for path in ("/v1/flavors", "/v1/networks", "/v1/keypairs", "/v1/security_groups"):
            body = (await http.get(path)).json()
            assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
            assert body["items"], path


async def test_create_answers_the_password_once(sandbox: Sandbox) -> None:
    async with raw(sandbox) as http:
        created = await http.post("/v1/databases", json=db_json(version="14", db_password="chosen-password-1"))
        assert created.status_code == 201
        body = created.json()
        assert body["db_password"] == "chosen-password-1"
        assert (body["db_version"], body["port"], body["db_name"], body["db_user"]) == ("14", 5432, "app", "appuser")
        assert "version" not in body  # the request says version, the response db_version
        assert isinstance(body["id"], int) and body["created_at"].endswith("Z")

        fetched = (await http.get(f"/v1/databases/{body['id']}")).json()
        assert "db_password" not in fetched
        assert "db_password" not in (await http.get("/v1/databases")).json()["items"][0]
        assert not any("chosen-password-1" in repr(r.public) for r in sandbox.store.records.values())

        redis = (await http.post("/v1/redis", json=db_json("cache"))).json()
        assert (redis["version"], redis["port"]) == ("7", 6379)
        assert len(redis["password"]) >= 16  # generated when omitted
        assert "password" not in (await http.get(f"/v1/redis/{redis['id']}")).json()

        deleted = await http.delete(f"/v1/redis/{redis['id']}")
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert (await http.get(f"/v1/redis/{redis['id']}")).status_code == 404


async def test_ids_are_numbered_per_kind_like_the_apis_examples(sandbox: Sandbox) -> None:
    """The API's examples answer id 1 for the first database and for the first Redis instance."""
    async with raw(sandbox) as http:
        ids = [(await http.post(f"/v1/{path}", json=db_json(name))).json()["id"]
               for path, name in (("databases", "a"), ("redis", "b"), ("databases", "c"), ("redis", "d"))]  # fmt: skip
        assert ids == [1, 1, 2, 2]
        assert (await http.get("/v1/databases/1")).json()["name"] == "a"
        assert (await http.get("/v1/redis/1")).json()["name"] == "b"
        assert (await http.delete("/v1/redis/1")).status_code == 204
        assert (await http.get("/v1/databases/1")).json()["name"] == "a"  # another kind's delete leaves it be


@pytest.mark.parametrize(
    ("body", "status", "starts"),
    [
        (db_json("My_DB"), 422, "name:"),
        (db_json(flavor_id="nope"), 422, "flavor_id: unknown flavor 'nope'"),
        (db_json(network_id="nope"), 422, "network_id: unknown network 'nope'"),
        (db_json(keypair_name="nope"), 422, "keypair_name: unknown keypair 'nope'"),
        (db_json(security_group_names=["default", "nope"]), 422, "security_group_names: unknown security group 'nope'"),
        (db_json(version="9"), 422, "version:"),
        ({k: v for k, v in db_json().items() if k != "network_id"}, 422, "network_id:"),
        ([1, 2], 422, "body:"),
    ],
)
async def test_create_validation(sandbox: Sandbox, body: Any, status: int, starts: str) -> None:
    async with raw(sandbox) as http:
        response = await http.post("/v1/databases", json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["message"].startswith(starts)
    assert sandbox.store.records == {}


async def test_create_body_not_json(sandbox: Sandbox) -> None:
    async with raw(sandbox) as http:
        response = await http.post("/v1/redis", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


async def test_unknown_id_is_404(sandbox: Sandbox) -> None:
    async with raw(sandbox) as http:
        for path in ("/v1/databases/5", "/v1/redis/abc"):
            response = await http.get(path)
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        assert (await http.delete("/v1/databases/5")).status_code == 404


async def test_provisioning_becomes_ready_with_a_floating_ip_on_the_clock() -> None:
    clock = Clock()
    sandbox = Sandbox(provisioning_seconds=30, clock=clock)
    async with sandbox.client() as redu:
        created = await redu.create_database(DatabaseCreate(name="slow", **REFS))
        assert (created.status, created.floating_ip) == ("provisioning", None)
        clock.now += 29.9
        got = await redu.get_database(created.id)
        assert (got.status, got.floating_ip) == ("provisioning", None)
        clock.now += 0.1
        got = await redu.get_database(created.id)
        assert got.status == "ready"
        assert ipaddress.ip_address(got.floating_ip) in ipaddress.ip_network("203.0.113.0/24")
        assert (await redu.get_database(created.id)).floating_ip == got.floating_ip  # stable once set
        assert (await redu.list_databases())[0].status == "ready"


async def test_fail_names_end_in_error() -> None:
    clock = Clock()
    sandbox = Sandbox(provisioning_seconds=5, clock=clock)
    async with raw(sandbox) as http:
        assert (await http.post("/_sandbox/fail-names", json=["doomed"])).json() == ["doomed"]
    async with sandbox.client() as redu:
        failing = await redu.create_redis(RedisCreate(name="fail-cache", **REFS))
        doomed = await redu.create_database(DatabaseCreate(name="doomed", **REFS))
        fine = await redu.create_database(DatabaseCreate(name="fine", **REFS))
        assert failing.status == doomed.status == "provisioning"
        clock.now += 5
        for got in (await redu.get_redis(failing.id), await redu.get_database(doomed.id)):
            assert (got.status, got.floating_ip) == ("error", None)
        assert (await redu.get_database(fine.id)).status == "ready"


async def test_instances_are_scoped_per_api_key() -> None:
    sandbox = Sandbox(
        provisioning_seconds=0,
        api_keys={"key-a": Account("usr_a", "alice", "a@x.test"), "key-b": Account("usr_b", "bob", "b@x.test")},
    )
    async with sandbox.client("key-a", retry=FAST_RETRY) as alice, sandbox.client("key-b", retry=FAST_RETRY) as bob:
        mine = await alice.create_database(DatabaseCreate(name="shared-name", **REFS))
        assert await bob.list_databases() == []
        with pytest.raises(errors.NotFoundError):
            await bob.get_database(mine.id)
        with pytest.raises(errors.NotFoundError):
            await bob.delete_database(mine.id)
        theirs = await bob.create_database(DatabaseCreate(name="shared-name", **REFS))  # names are per user
        assert theirs.id != mine.id
        assert [d.id for d in await alice.list_databases()] == [mine.id]
        assert [d.id for d in await bob.list_databases()] == [theirs.id]
        assert (await alice.me()).username == "alice" and (await bob.me()).username == "bob"


async def test_read_only_accounts_cannot_write() -> None:
    sandbox = Sandbox(api_keys={"ro": Account("usr_ro", "viewer", "v@x.test", read_only=True)})
    async with raw(sandbox, "ro") as http:
        response = await http.post("/v1/databases", json=db_json())
        assert response.status_code == 403
        assert response.json() == {
            "error": {"code": "forbidden", "message": "the API key does not have access to the requested resource"}
        }
        assert (await http.get("/v1/me")).json()["roles"] == ["viewer"]


@pytest.mark.parametrize("style", ["items", "plural", "bare"])
async def test_list_styles_and_cursors(style: ListStyle) -> None:
    sandbox = Sandbox(provisioning_seconds=0, page_size=2, list_style=style)
    async with raw(sandbox) as http:
        for i in range(5):
            assert (await http.post("/v1/redis", json=db_json(f"cache-{i}"))).status_code == 201
        first = (await http.get("/v1/redis")).json()
        if style == "bare":
            assert [r["name"] for r in first] == [f"cache-{i}" for i in range(5)]  # no pages
            return
        key = "items" if style == "items" else "redis"
        assert set(first) == {key, "next_cursor"}
        names, body = [], first
        while True:
            names += [r["name"] for r in body[key]]
            if body["next_cursor"] is None:
                break
            body = (await http.get("/v1/redis", params={"cursor": body["next_cursor"]})).json()
        assert names == [f"cache-{i}" for i in range(5)]
        groups = (await http.get("/v1/security_groups")).json()
        assert set(groups) == {"items" if style == "items" else "security_groups", "next_cursor"}
        for bad in ("x", "-2"):
            response = await http.get("/v1/redis", params={"cursor": bad})
            assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


# --- the fault plan ------------------------------------------------------------------------------------


async def test_fault_times(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(path="/v1/me", status=503, times=2))
    async with raw(sandbox) as http:
        assert [(await http.get("/v1/me")).status_code for _ in range(3)] == [503, 503, 200]
        assert sandbox.faults.pending() == []

        forever = sandbox.faults.add(path="/v1/flavors", status=500, times=-1)
        assert [(await http.get("/v1/flavors")).status_code for _ in range(4)] == [500] * 4
        assert sandbox.faults.pending() == [forever]
        sandbox.faults.clear()
        assert (await http.get("/v1/flavors")).status_code == 200


async def test_fault_error_envelope_and_retry_after(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(status=429, retry_after="12"))
    async with raw(sandbox) as http:
        response = await http.get("/v1/networks")
    assert response.status_code == 429 and response.headers["retry-after"] == "12"
    assert response.json() == {"error": {"code": "rate_limited", "message": "sandbox fault: HTTP 429"}}


async def test_fault_matching_by_method_and_path(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(method="get", path="/v1/databases*", status=502, times=-1))
    async with raw(sandbox) as http:
        created = await http.post("/v1/databases", json=db_json())  # another method: untouched
        assert created.status_code == 201
        assert (await http.get("/v1/databases")).status_code == 502
        assert (await http.get(f"/v1/databases/{created.json()['id']}")).status_code == 502
        assert (await http.get("/v1/redis")).status_code == 200  # another path: untouched
        assert (await http.get("/v1/me")).status_code == 200


async def test_faults_are_consumed_in_order(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(path="/v1/me", status=503))
    sandbox.faults.add(Fault(status=504))  # any path
    async with raw(sandbox) as http:
        assert (await http.get("/v1/me")).status_code == 503
        assert (await http.get("/v1/me")).status_code == 504
        assert (await http.get("/v1/me")).status_code == 200


def test_fault_plan_take() -> None:
    plan = FaultPlan()
    assert plan.take("GET", "/v1/me") is None
    fault = plan.add(method="DELETE", path="/v1/redis/*", status=500)
    assert plan.take("GET", "/v1/redis/1") is None
    assert plan.take("DELETE", "/v1/redis") is None
    assert plan.take("delete", "/v1/redis/7") is fault
    assert plan.take("DELETE", "/v1/redis/7") is None
    assert fault.to_dict()["status"] == 500


async def test_apply_then_fail_really_creates(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(method="POST", path="/v1/databases", status=502, apply=True))
    sandbox.faults.add(Fault(method="POST", path="/v1/redis", status=502))  # not applied
    async with raw(sandbox) as http:
        assert (await http.post("/v1/databases", json=db_json("applied"))).status_code == 502
        assert (await http.post("/v1/redis", json=db_json("not-applied"))).status_code == 502
        assert [d["name"] for d in (await http.get("/v1/databases")).json()["items"]] == ["applied"]
        assert (await http.get("/v1/redis")).json()["items"] == []
        again = await http.post("/v1/databases", json=db_json("applied"))
        assert again.status_code == 409  # the first one is really there
    assert sandbox.count("POST", "/v1/databases") == 2


async def test_apply_with_a_delay_answers_the_real_result_once(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(method="POST", apply=True, delay=0.001))
    async with raw(sandbox) as http:
        response = await http.post("/v1/databases", json=db_json())
        assert response.status_code == 201 and response.json()["name"] == "my-db"
        assert len((await http.get("/v1/databases")).json()["items"]) == 1


async def test_apply_then_drop_or_timeout(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(method="POST", apply=True, drop=True))
    sandbox.faults.add(Fault(method="POST", apply=True, timeout=True))
    async with raw(sandbox) as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.post("/v1/redis", json=db_json("dropped"))
        with pytest.raises(httpx2.ReadTimeout):
            await http.post("/v1/redis", json=db_json("hung"), timeout=0.05)
        names = [r["name"] for r in (await http.get("/v1/redis")).json()["items"]]
    assert names == ["dropped", "hung"]


@pytest.mark.parametrize(
    ("body", "content_type", "starts"),
    [
        ("html", "text/html", b"<!DOCTYPE html>"),
        ("not-json", "application/json", b"upstream said"),
        ("wrong-shape", "application/json", b'{"unexpected"'),
        ("empty", "application/json", b""),
    ],
)
async def test_malformed_body_faults(sandbox: Sandbox, body: MalformedBody, content_type: str, starts: bytes) -> None:
    sandbox.faults.add(Fault(path="/v1/flavors", body=body))
    async with raw(sandbox) as http:
        response = await http.get("/v1/flavors")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.content.startswith(starts)


# --- the control surface -------------------------------------------------------------------------------


async def test_control_faults_endpoint(sandbox: Sandbox) -> None:
    async with raw(sandbox) as http:
        added = await http.post("/_sandbox/faults", json={"method": "GET", "path": "/v1/me", "status": 503, "times": 2})
        assert added.status_code == 201
        assert added.json() == Fault(method="GET", path="/v1/me", status=503, times=2).to_dict()
        assert (await http.get("/_sandbox/faults")).json() == [added.json()]
        assert (await http.get("/v1/me")).status_code == 503
        assert (await http.get("/_sandbox/faults")).json()[0]["times"] == 1  # one use consumed
        assert (await http.delete("/_sandbox/faults")).status_code == 204
        assert (await http.get("/_sandbox/faults")).json() == []
        assert (await http.get("/v1/me")).status_code == 200

        bad = await http.post("/_sandbox/faults", json={"stauts": 500})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
        assert sandbox.faults.pending() == []

        # Control requests are neither faulted nor recorded.
        await http.post("/_sandbox/faults", json={"status": 500, "times": -1})
        assert (await http.get("/_sandbox/faults")).status_code == 200
        assert (await http.get("/v1/me")).status_code == 500


async def test_control_requests_endpoint(sandbox: Sandbox) -> None:
    async with raw(sandbox) as http:
        await http.get("/v1/me")
        await http.post("/v1/databases", json=db_json())
        await http.get("/v1/databases", params={"cursor": "0"})
        await http.get("/_sandbox/faults")
        async with raw(sandbox, "wrong") as intruder:
            await intruder.get("/v1/flavors")  # recorded too: it reached the API
        expected = [
            {"method": "GET", "path": "/v1/me"},
            {"method": "POST", "path": "/v1/databases"},
            {"method": "GET", "path": "/v1/databases"},
            {"method": "GET", "path": "/v1/flavors"},
        ]
        received = (await http.get("/_sandbox/requests")).json()
        assert [{k: r[k] for k in ("method", "path")} for r in received] == expected
        arrivals = [r["at"] for r in received]  # when each arrived (the sandbox's monotonic clock)
        assert arrivals == sorted(arrivals) and arrivals[-1] <= time.monotonic()
        assert sandbox.count() == 4 and sandbox.count("GET") == 3 and sandbox.count(path="/v1/databases") == 2
        assert sandbox.count("POST", "/v1/databases") == 1 and sandbox.count("DELETE") == 0
        assert (await http.delete("/_sandbox/requests")).status_code == 204
        assert (await http.get("/_sandbox/requests")).json() == []
        assert sandbox.count() == 0


# --- served on a real port ----------------------------------------------------------------------------


async def test_running_sandbox_serves_the_api_on_loopback() -> None:
    with running_sandbox(port=0, provisioning_seconds=0, page_size=2) as (url, sandbox):
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/v1") and url.endswith("/v1")
        root = url.removesuffix("/v1")
        async with httpx2.AsyncClient(base_url=url + "/", headers={"x-api-key": sandbox.default_key}) as http:
            response = await http.get("flavors")
            assert response.status_code == 200
            assert response.json() == {"items": sandbox.store.flavors[:2], "next_cursor": "2"}
            assert (await http.get("me", headers={"x-api-key": "nope"})).json() == UNAUTHORIZED

            # Driven over HTTP as a test in another process would: a fault, then what was received.
            fault = {"method": "GET", "path": "/v1/networks", "status": 503}
            assert (await http.post(f"{root}/_sandbox/faults", json=fault)).status_code == 201
            async with ReduClient(sandbox.default_key, base_url=url, retry=FAST_RETRY, timeout=0.25) as redu:
                assert len(await redu.list_flavors()) == 3
                assert len(await redu.list_networks()) == 2  # retried past the 503
                sandbox.faults.add(Fault(path="/v1/me", drop=True))
                sandbox.faults.add(Fault(path="/v1/me", timeout=True))
                assert (await redu.me()).username == "sandbox"  # after a drop and a timeout
            seen = [{k: r[k] for k in ("method", "path")} for r in (await http.get(f"{root}/_sandbox/requests")).json()]
            assert seen.count({"method": "GET", "path": "/v1/networks"}) == 2
            assert seen.count({"method": "GET", "path": "/v1/me"}) == 1 + 3  # the bad key; drop, timeout, ok


def test_running_sandbox_with_a_given_sandbox_and_stop() -> None:
    mine = Sandbox(page_size=1)
    with running_sandbox(sandbox=mine) as (url, sandbox):
        assert sandbox is mine
        response = httpx2.get(url + "/keypairs", headers={"x-api-key": DEFAULT_API_KEY})
        assert response.json()["items"][0]["name"] == "default-key"
    with pytest.raises(httpx2.ConnectError):  # stopped, and the port is released
        httpx2.get(url + "/keypairs", headers={"x-api-key": DEFAULT_API_KEY})


def test_banner() -> None:
    assert base_url("127.0.0.1", 8080) == "http://127.0.0.1:8080/v1"
    assert base_url("::1", 9000) == "http://[::1]:9000/v1"
    text = banner("http://127.0.0.1:8080/v1", "sandbox-key")
    assert "http://127.0.0.1:8080/v1" in text.splitlines()[0] and "sandbox-key" in text.splitlines()[0]
    assert "curl -s -H 'x-api-key: sandbox-key' http://127.0.0.1:8080/v1/flavors" in text
    assert "'x-api-key: it'\"'\"'s'" in banner("http://h:1/v1", "it's")  # shell-quoted


def test_serve_standalone_in_a_subprocess() -> None:
    """``python -m redu_mcp.sandbox.serve --port 0``: prints the URL, key and curl line, serves, stops on Ctrl+C."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "redu_mcp.sandbox.serve", "--port", "0", "--page-size", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = process.stderr.readline()
        second = process.stderr.readline()
        url = next(word for word in first.split() if word.startswith("http://"))
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1") and ":0/" not in url
        assert f"API key: {DEFAULT_API_KEY}" in first
        assert f"curl -s -H 'x-api-key: {DEFAULT_API_KEY}' {url}/flavors" in second
        # The socket is listening before the banner is printed: a connection waits for uvicorn.
        response = httpx2.get(url + "/flavors", headers={"x-api-key": DEFAULT_API_KEY}, timeout=10)
        assert response.status_code == 200
        flavor = {"id": "1", "name": "db.small", "vcpus": 1, "ram": 2048, "disk": 20}
        assert response.json() == {"items": [flavor], "next_cursor": "1"}
    finally:
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=10)
    assert process.returncode == 0, rest
