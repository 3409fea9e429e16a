"""``ReduClient`` against the real sandbox, in-process (``Sandbox.client()``: no network).

An ``httpx2.MockTransport`` is used only for answers the sandbox cannot give (wrapped keypairs, a
cursor that loops, a body that echoes the key).
"""

from __future__ import annotations

import email.utils
import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from redu_mcp import api as errors
from redu_mcp.api import (
    DATABASE,
    KINDS,
    REDIS,
    CreatedDatabase,
    CreatedRedis,
    Database,
    DatabaseCreate,
    Kind,
    Redis,
    RedisCreate,
    ReduClient,
    RetryPolicy,
    parse_retry_after,
)
from redu_mcp.api import _client as client_module
from redu_mcp.sandbox import Account, Fault, ListStyle, Sandbox
from redu_mcp.sandbox.faults import MalformedBody
from redu_mcp.sandbox.serve import running_sandbox
from tests.helpers import FAST_RETRY

#: Retries in milliseconds: tests assert on counts, never on time.
NO_RETRY = RetryPolicy.none()

KEY = "sk-live-SECRETKEY-123"
PASSWORD = "pw-SECRET-hunter2-0042"


REFS = {"flavor_id": "1", "network_id": "net-private", "keypair_name": "default-key"}


def pg(name: str = "my-db", **fields: Any) -> DatabaseCreate:
    return DatabaseCreate(name=name, **{**REFS, **fields})


def rd(name: str = "my-cache", **fields: Any) -> RedisCreate:
    return RedisCreate(name=name, **{**REFS, **fields})


BODIES: dict[str, Callable[..., Any]] = {"database": pg, "redis": rd}
kinds = pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))


@pytest.fixture
async def sandbox() -> Any:
    sb = Sandbox(provisioning_seconds=0)
    yield sb
    await sb.aclose()


@pytest.fixture
async def redu(sandbox: Sandbox) -> Any:
    async with sandbox.client(retry=FAST_RETRY) as client:
        yield client


def mock_client(handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: Any) -> ReduClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return ReduClient(
        "mock-key", base_url="https://api.example.test/v1", transport=httpx2.MockTransport(handler), **kwargs
    )


# --- endpoints -------------------------------------------------------------------------------------


async def test_me(redu: ReduClient) -> None:
    me = await redu.me()
    assert (me.id, me.username, me.email, me.roles) == ("usr_sandbox", "sandbox", "sandbox@example.com", ["user"])


async def test_lookups(redu: ReduClient) -> None:
    flavors = await redu.list_flavors()
    assert [f.id for f in flavors] == ["1", "2", "m1.large"]  # opaque string ids
    assert flavors[0].vcpus == 1 and flavors[0].ram == 2048

    networks = await redu.list_networks()
    assert {n.id: n.name for n in networks} == {"net-public": "public", "net-private": "private"}
    assert "external" not in networks[0].model_dump()  # an undeclared field is ignored, not an error

    keypairs = await redu.list_keypairs()
    assert [k.name for k in keypairs] == ["default-key"]
    assert keypairs[0].fingerprint and keypairs[0].public_key.startswith("ssh-ed25519 ")

    groups = await redu.list_security_groups()
    assert [(g.id, g.name) for g in groups] == [("1", "default"), ("2", "db-clients")]  # int ids → str
    assert groups[1].rules[0].port_range_min == 5432


@kinds
async def test_instance_lifecycle(redu: ReduClient, sandbox: Sandbox, kind: Kind) -> None:
    created = await redu.create_instance(kind, BODIES[kind.name]())
    assert isinstance(created, kind.created_model)
    assert created.status in ("provisioning", "ready")
    assert created.port == kind.default_port
    password = getattr(created, kind.password_field)
    assert isinstance(password, SecretStr) and len(password.get_secret_value()) >= 8
    assert kind.password_of(created) == password.get_secret_value()
    assert kind.password_field not in kind.public(created).model_dump()

    fetched = await redu.get_instance(kind, created.id)
    assert type(fetched) is kind.model
    assert fetched.id == created.id and fetched.name == created.name
    assert kind.password_field not in fetched.model_dump()  # GET never has the password
    assert password.get_secret_value() not in repr(fetched.model_dump())

    listed = await redu.list_instances(kind)
    assert [i.id for i in listed] == [created.id]
    assert all(type(i) is kind.model for i in listed)

    assert await redu.delete_instance(kind, created.id) == 204
    with pytest.raises(errors.NotFoundError):
        await redu.get_instance(kind, created.id)
    assert await redu.list_instances(kind) == []
    assert sandbox.count("POST") == 1 and sandbox.count("DELETE") == 1


async def test_named_database_methods(redu: ReduClient) -> None:
    created = await redu.create_database(pg(version="15", db_name="shop", db_user="shopper", db_password=PASSWORD))
    assert isinstance(created, CreatedDatabase)
    # The request says version; the response says db_version.
    assert (created.db_version, created.db_name, created.db_user) == ("15", "shop", "shopper")
    assert DATABASE.version_of(created) == "15"
    assert created.db_password.get_secret_value() == PASSWORD  # the one we chose, returned once
    assert PASSWORD not in repr(created) and PASSWORD not in str(created)

    got = await redu.get_database(created.id)
    assert isinstance(got, Database) and not isinstance(got, CreatedDatabase)
    assert [d.id for d in await redu.list_databases()] == [created.id]
    await redu.delete_database(created.id)
    assert await redu.list_databases() == []


async def test_named_redis_methods(redu: ReduClient) -> None:
    created = await redu.create_redis(rd(version="6"))
    assert isinstance(created, CreatedRedis)
    assert created.version == "6" and REDIS.version_of(created) == "6" and created.port == 6379
    assert isinstance(created.password, SecretStr)  # generated upstream when omitted

    got = await redu.get_redis(created.id)
    assert isinstance(got, Redis) and "password" not in got.model_dump()
    assert [r.name for r in await redu.list_redis()] == ["my-cache"]
    await redu.delete_redis(created.id)
    assert await redu.list_redis() == []


async def test_a_read_keeps_only_declared_fields(redu: ReduClient, sandbox: Sandbox) -> None:
    """Should the API ever echo a password on GET, or nest one, the read model does not keep it."""
    created = await redu.create_database(pg())
    sandbox.store.record("database", created.id).public.update(
        db_password="leaked",
        api_key="also-leaked",
        passwd="leaked-3",
        connection={"password": "leaked-4", "dsn": "postgresql://u:leaked-5@h/db"},
        region="eu-1",
    )
    got = await redu.get_database(created.id)
    dumped = repr(got.model_dump())
    assert "leaked" not in dumped and "region" not in dumped  # nothing undeclared, secret-looking or not


async def test_create_rejects_the_wrong_body_type(redu: ReduClient, sandbox: Sandbox) -> None:
    with pytest.raises(TypeError):
        await redu.create_instance(DATABASE, rd())
    assert sandbox.count() == 0


async def test_unknown_statuses_are_kept_and_unknown_fields_ignored(redu: ReduClient, sandbox: Sandbox) -> None:
    created = await redu.create_redis(rd())
    sandbox.store.record("redis", created.id).public.update(status="rebuilding", maintenance_window="sun 02:00")
    got = await redu.get_redis(created.id)
    assert got.status == "rebuilding"  # an unknown status is representable
    assert "maintenance_window" not in got.model_dump()  # an unknown field is ignored, and breaks nothing
    assert (await redu.list_redis())[0].status == "rebuilding"


async def test_with_api_key_shares_the_pool_and_switches_user() -> None:
    alice_account, bob_account = Account("usr_a", "alice", "a@x.test"), Account("usr_b", "bob", "b@x.test")
    sandbox = Sandbox(api_keys={"key-a": alice_account, "key-b": bob_account})
    async with sandbox.client("key-a", retry=FAST_RETRY) as alice:
        bob = alice.with_api_key("key-b")
        assert (await alice.me()).username == "alice"
        assert (await bob.me()).username == "bob"
        await bob.aclose()  # does not close alice's pool
        assert (await alice.me()).username == "alice"


async def test_no_api_key_fails_before_any_request(sandbox: Sandbox) -> None:
    async with ReduClient(None, transport=sandbox.transport()) as redu:
        assert not redu.has_api_key and "unset" in repr(redu)
        with pytest.raises(errors.NotConfiguredError):
            await redu.me()
    assert sandbox.count() == 0


# --- pagination and list shapes ----------------------------------------------------------------------


async def test_pagination_follows_next_cursor() -> None:
    sandbox = Sandbox(provisioning_seconds=0, page_size=2)
    async with sandbox.client(retry=FAST_RETRY) as redu:
        names = [f"db-{i}" for i in range(7)]
        for name in names:
            await redu.create_database(pg(name))
        sandbox.requests.clear()
        assert [d.name for d in await redu.list_databases()] == names
        assert sandbox.count("GET", "/v1/databases") == 4  # 2 + 2 + 2 + 1

        sandbox.requests.clear()
        assert [d.name for d in await redu.list_databases(limit=3)] == names[:3]
        assert sandbox.count("GET", "/v1/databases") == 2  # stops once it has enough

        assert [f.id for f in await redu.list_flavors()] == ["1", "2", "m1.large"]  # lookups page too


@pytest.mark.parametrize("style", ["items", "plural", "bare"])
async def test_every_list_style(style: ListStyle) -> None:
    sandbox = Sandbox(provisioning_seconds=0, page_size=2, list_style=style)
    async with sandbox.client(retry=FAST_RETRY) as redu:
        for i in range(5):
            await redu.create_database(pg(f"db-{i}"))
            await redu.create_redis(rd(f"cache-{i}"))
        assert [d.name for d in await redu.list_databases()] == [f"db-{i}" for i in range(5)]
        assert [r.name for r in await redu.list_redis()] == [f"cache-{i}" for i in range(5)]
        assert [f.id for f in await redu.list_flavors()] == ["1", "2", "m1.large"]
        assert [n.id for n in await redu.list_networks()] == ["net-public", "net-private"]
        assert [k.name for k in await redu.list_keypairs()] == ["default-key"]
        assert [g.name for g in await redu.list_security_groups()] == ["default", "db-clients"]


async def test_old_wrapped_keypairs_and_security_groups() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v1/keypairs":
            return httpx2.Response(
                200,
                json=[
                    {"keypair": {"name": "old", "public_key": "ssh-rsa AAAA old", "fingerprint": "aa:bb"}},
                    {"keypair": {"name": "older", "public_key": "ssh-rsa AAAA older", "fingerprint": "cc:dd"}},
                ],
            )
        return httpx2.Response(200, json=[{"security_group": {"id": "sg-1", "name": "default", "rules": []}}])

    async with mock_client(handler) as redu:
        keypairs = await redu.list_keypairs()
        assert [(k.name, k.fingerprint) for k in keypairs] == [("old", "aa:bb"), ("older", "cc:dd")]
        assert [g.id for g in await redu.list_security_groups()] == ["sg-1"]


async def test_a_repeated_cursor_stops_the_loop() -> None:
    cursors: list[str | None] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        cursors.append(request.url.params.get("cursor"))
        return httpx2.Response(200, json={"items": [{"id": str(len(cursors)), "name": "f"}], "next_cursor": "again"})

    async with mock_client(handler) as redu:
        flavors = await redu.list_flavors()
    assert cursors == [None, "again"]
    assert [f.id for f in flavors] == ["1", "2"]


async def test_an_endless_cursor_stops_at_max_pages(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    monkeypatch.setattr(client_module, "MAX_PAGES", 5)
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(200, json={"items": [{"id": str(calls), "name": "n"}], "next_cursor": f"c{calls}"})

    async with mock_client(handler) as redu:
        networks = await redu.list_networks()
    assert calls == 5 and len(networks) == 5
    assert "stopped following next_cursor" in caplog.text


async def test_a_list_of_the_wrong_shape_is_a_format_error() -> None:
    async with mock_client(lambda request: httpx2.Response(200, json={"count": 3})) as redu:
        with pytest.raises(errors.ResponseFormatError) as info:
            await redu.list_databases()
    assert info.value.endpoint == "GET /databases"


# --- errors ----------------------------------------------------------------------------------------------


async def test_401_bad_key(sandbox: Sandbox) -> None:
    async with sandbox.client("not-a-key", retry=FAST_RETRY) as redu:
        with pytest.raises(errors.AuthenticationError) as info:
            await redu.me()
    exc = info.value
    assert (exc.status, exc.code, exc.message, exc.endpoint) == (401, "unauthorized", "Invalid API key", "GET /me")
    assert str(exc) == "GET /me: HTTP 401 unauthorized: Invalid API key"
    assert sandbox.count() == 1  # never retried


async def test_403_read_only_account() -> None:
    sandbox = Sandbox(
        provisioning_seconds=0,
        api_keys={
            "rw": Account("usr_rw", "owner", "o@example.com"),
            "ro": Account("usr_rw", "viewer", "v@example.com", read_only=True),  # a read-only key, same user
        },
    )
    async with sandbox.client("rw", retry=FAST_RETRY) as owner, sandbox.client("ro", retry=FAST_RETRY) as viewer:
        created = await owner.create_database(pg())
        assert (await viewer.me()).roles == ["viewer"]
        assert [d.id for d in await viewer.list_databases()] == [created.id]  # reads are fine
        with pytest.raises(errors.PermissionDeniedError) as info:
            await viewer.create_database(pg("another"))
        assert (info.value.status, info.value.code) == (403, "forbidden")
        assert "does not have access" in info.value.message
        with pytest.raises(errors.PermissionDeniedError):
            await viewer.delete_database(created.id)
        assert [d.id for d in await owner.list_databases()] == [created.id]
    assert sandbox.count("DELETE") == 1


@kinds
async def test_404(redu: ReduClient, sandbox: Sandbox, kind: Kind) -> None:
    with pytest.raises(errors.NotFoundError) as info:
        await redu.get_instance(kind, 999)
    assert (info.value.status, info.value.code) == (404, "not_found")
    assert info.value.endpoint == f"GET /{kind.collection}/999"
    assert "999" in info.value.message
    with pytest.raises(errors.NotFoundError):  # a first-attempt 404 on DELETE is a real 404
        await redu.delete_instance(kind, 999)
    assert sandbox.count() == 2  # neither retried


async def test_409_duplicate_name(redu: ReduClient) -> None:
    await redu.create_database(pg("taken"))
    with pytest.raises(errors.ConflictError) as info:
        await redu.create_database(pg("taken"))
    exc = info.value
    assert (exc.status, exc.code, exc.endpoint) == (409, "conflict", "POST /databases")
    assert exc.message == "an instance named 'taken' already exists"  # the API's own words
    assert "taken" in str(exc)


async def test_422_unknown_flavor(redu: ReduClient, sandbox: Sandbox) -> None:
    with pytest.raises(errors.InvalidRequestError) as info:
        await redu.create_redis(rd(flavor_id="x9.huge"))
    exc = info.value
    assert (exc.status, exc.code) == (422, "validation_error")
    assert exc.message.startswith("flavor_id: unknown flavor 'x9.huge'")
    assert sandbox.count("POST") == 1
    assert await redu.list_redis() == []


async def test_429_retry_after_seconds(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(path="/v1/flavors", status=429, retry_after="7"))
    async with sandbox.client(retry=NO_RETRY) as redu:
        with pytest.raises(errors.RateLimitedError) as info:
            await redu.list_flavors()
    assert (info.value.status, info.value.code, info.value.retry_after) == (429, "rate_limited", 7.0)


async def test_429_retry_after_http_date(sandbox: Sandbox) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    sandbox.faults.add(Fault(path="/v1/me", status=429, retry_after=email.utils.format_datetime(when, usegmt=True)))
    async with sandbox.client(retry=NO_RETRY) as redu:
        with pytest.raises(errors.RateLimitedError) as info:
            await redu.me()
    assert 60 < info.value.retry_after <= 120


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx(sandbox: Sandbox, status: int) -> None:
    sandbox.faults.add(Fault(path="/v1/networks", status=status, retry_after="3"))
    async with sandbox.client(retry=NO_RETRY) as redu:
        with pytest.raises(errors.ServerError) as info:
            await redu.list_networks()
    assert info.value.status == status and info.value.retry_after == 3.0
    assert f"sandbox fault: HTTP {status}" in str(info.value)


async def test_5xx_html_page_from_a_proxy(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(path="/v1/me", status=502, body="html"))
    async with sandbox.client(retry=NO_RETRY) as redu:
        with pytest.raises(errors.ServerError) as info:
            await redu.me()
    assert info.value.status == 502 and info.value.code is None
    assert "HTML error page" in info.value.message and "<html" not in str(info.value)


async def test_dropped_connection(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(path="/v1/me", drop=True))
    async with sandbox.client(retry=NO_RETRY) as redu:
        with pytest.raises(errors.TransportError) as info:
            await redu.me()
    assert info.value.maybe_applied and info.value.endpoint == "GET /me"
    assert info.value.status is None


async def test_read_timeout(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(path="/v1/databases", method="POST", timeout=True))
    async with sandbox.client(retry=NO_RETRY, timeout=0.05) as redu:
        with pytest.raises(errors.TransportError) as info:
            await redu.create_database(pg())
    assert "timed out" in str(info.value)
    assert info.value.maybe_applied  # the request went out: the create may have happened


async def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ReduClient("k", base_url=f"http://127.0.0.1:{port}/v1", retry=NO_RETRY) as redu:
        with pytest.raises(errors.TransportError) as info:
            await redu.me()
    assert not info.value.maybe_applied and "could not connect" in str(info.value)


@pytest.mark.parametrize("body", ["html", "not-json", "wrong-shape", "empty"])
@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("GET", "/v1/me", lambda r: r.me()),
        ("GET", "/v1/flavors", lambda r: r.list_flavors()),
        ("GET", "/v1/databases", lambda r: r.list_databases()),
        ("GET", "/v1/redis/1", lambda r: r.get_redis(1)),
        ("POST", "/v1/databases", lambda r: r.create_database(pg())),
    ],
    ids=["me", "flavors", "list", "get", "create"],
)
async def test_malformed_bodies(sandbox: Sandbox, body: MalformedBody, method: str, path: str, call: Any) -> None:
    async with sandbox.client(retry=FAST_RETRY) as redu:
        await redu.create_redis(rd())  # id 1 exists, so only the fault can fail the GET
        sandbox.faults.add(Fault(method=method, path=path, body=body))
        with pytest.raises(errors.ResponseFormatError) as info:
            await call(redu)
    endpoint = f"{method} {path.removeprefix('/v1')}"
    assert info.value.endpoint == endpoint and str(info.value).startswith(endpoint)
    assert info.value.status == 200
    if body == "html":
        assert "HTML page" in info.value.message
    assert sandbox.count(method, path) == 1  # a malformed answer is not retried


async def test_format_error_names_fields_without_values() -> None:
    body = {"id": "not-an-int", "name": "x", "status": "ready", "db_password": "s3cr3t-value"}
    async with mock_client(lambda request: httpx2.Response(200, json=body)) as redu:
        with pytest.raises(errors.ResponseFormatError) as info:
            await redu.get_database(1)
    assert "id:" in str(info.value) and "not-an-int" not in str(info.value)


async def test_error_without_envelope_keeps_text_and_status() -> None:
    async with mock_client(lambda request: httpx2.Response(418, text="I'm a teapot")) as redu:
        with pytest.raises(errors.APIStatusError) as info:
            await redu.me()
    assert type(info.value) is errors.APIStatusError
    assert (info.value.status, info.value.code, info.value.message) == (418, None, "I'm a teapot")


# --- retries -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after"), [(503, None), (429, "0"), (502, None), (504, "1")])
async def test_get_retried_then_succeeds(
    redu: ReduClient, sandbox: Sandbox, status: int, retry_after: str | None
) -> None:
    sandbox.faults.add(Fault(method="GET", path="/v1/flavors", status=status, retry_after=retry_after, times=2))
    assert len(await redu.list_flavors()) == 3
    assert sandbox.count("GET", "/v1/flavors") == 3


async def test_get_retried_after_a_dropped_connection(redu: ReduClient, sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(method="GET", path="/v1/me", drop=True))
    assert (await redu.me()).username == "sandbox"
    assert sandbox.count("GET", "/v1/me") == 2


async def test_get_gives_up_after_the_policy_attempts(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(method="GET", status=503, times=-1))
    async with sandbox.client(retry=RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.02)) as redu:
        with pytest.raises(errors.ServerError):
            await redu.list_keypairs()
    assert sandbox.count("GET", "/v1/keypairs") == 3


@pytest.mark.parametrize("status", [500, 400, 401, 404])
async def test_get_not_retried_on_other_statuses(redu: ReduClient, sandbox: Sandbox, status: int) -> None:
    sandbox.faults.add(Fault(method="GET", path="/v1/me", status=status, times=-1))
    with pytest.raises(errors.APIStatusError):
        await redu.me()
    assert sandbox.count("GET", "/v1/me") == 1


async def test_retry_after_is_honoured_and_capped(sandbox: Sandbox, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="redu_mcp.api")
    sandbox.faults.add(Fault(path="/v1/me", status=429, retry_after="120"))
    policy = RetryPolicy(
        backoff_initial=5, backoff_max=5, retry_after_max=0.01, total_seconds=300
    )  # 120 s fits: capped
    async with sandbox.client(retry=policy) as redu:
        await redu.me()
    assert "waiting 0.01s" in caplog.text  # the server's 120 s, capped; not the 5 s backoff
    assert sandbox.count("GET", "/v1/me") == 2


async def test_no_retry_past_the_total_budget(sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(path="/v1/me", status=429, retry_after="5", times=-1))
    async with sandbox.client(retry=RetryPolicy(retry_after_max=20, total_seconds=1)) as redu:
        with pytest.raises(errors.RateLimitedError):
            await redu.me()
    assert sandbox.count("GET", "/v1/me") == 1  # waiting 5 s would overrun the 1 s budget


@kinds
async def test_post_never_retried(redu: ReduClient, sandbox: Sandbox, kind: Kind) -> None:
    sandbox.faults.add(Fault(method="POST", status=502, times=-1))
    with pytest.raises(errors.ServerError):
        await redu.create_instance(kind, BODIES[kind.name]())
    assert sandbox.count("POST", f"/v1/{kind.collection}") == 1


async def test_post_not_retried_on_drop_even_when_applied(redu: ReduClient, sandbox: Sandbox) -> None:
    sandbox.faults.add(Fault(method="POST", apply=True, drop=True))
    with pytest.raises(errors.TransportError) as info:
        await redu.create_database(pg("uncertain"))
    assert info.value.maybe_applied
    assert sandbox.count("POST") == 1
    assert [d.name for d in await redu.list_databases()] == ["uncertain"]  # it did happen upstream


@kinds
async def test_delete_applied_then_dropped_counts_as_deleted(redu: ReduClient, sandbox: Sandbox, kind: Kind) -> None:
    created = await redu.create_instance(kind, BODIES[kind.name]())
    sandbox.faults.add(Fault(method="DELETE", apply=True, drop=True))
    await redu.delete_instance(kind, created.id)  # retry gets 404: the first attempt did it
    assert sandbox.count("DELETE") == 2
    assert await redu.list_instances(kind) == []


async def test_delete_retried_on_503(redu: ReduClient, sandbox: Sandbox) -> None:
    created = await redu.create_redis(rd())
    sandbox.faults.add(Fault(method="DELETE", status=503, times=2))
    await redu.delete_redis(created.id)
    assert sandbox.count("DELETE") == 3
    assert await redu.list_redis() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("5", 5.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:28:30 -0000", 30.0),  # parses naive: still UTC, never local time
        ("Wed, 21 Oct 2015 09:28:30 +0200", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
        ("Wed, 32 Foo 2015 07:28:30 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after(value, now=now) == expected


# --- secrets ---------------------------------------------------------------------------------------------------


class LogTrap:
    """Every logger at DEBUG (restored afterwards), every record captured, stdout/stderr too."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
        self.caplog, self.capfd = caplog, capfd
        self.captured: list[str] = []
        self.non_propagating: list[logging.Logger] = []
        self.debug_all()

    def debug_all(self) -> None:
        self.caplog.set_level(logging.DEBUG)
        for name in list(logging.root.manager.loggerDict):
            self.caplog.set_level(logging.DEBUG, logger=name)  # the first call remembers the old level
            logger = logging.getLogger(name)
            if not logger.propagate and logger not in self.non_propagating:
                logger.addHandler(self.caplog.handler)
                self.non_propagating.append(logger)

    def text(self) -> str:
        out, err = self.capfd.readouterr()
        self.captured.extend([out, err])
        records = [f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in self.caplog.records]
        return "\n".join([self.caplog.text, *records, *self.captured])

    def close(self) -> None:
        for logger in self.non_propagating:
            logger.removeHandler(self.caplog.handler)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[LogTrap]:
    trap = LogTrap(caplog, capfd)
    yield trap
    trap.close()


def assert_clean(texts: list[str], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


def describe(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc)), str(exc.args)]


async def exercise(redu: ReduClient, sandbox: Sandbox, caught: list[BaseException]) -> str:
    """Success and error paths; returns the password of the database created."""

    async def expect(exc_type: type[BaseException], call: Any) -> None:
        with pytest.raises(exc_type) as info:
            await call
        caught.append(info.value)

    await redu.me()
    await redu.list_flavors()
    await redu.list_networks()
    await redu.list_keypairs()
    await redu.list_security_groups()
    db = await redu.create_database(pg(db_password=PASSWORD))
    cache = await redu.create_redis(rd())
    await redu.get_database(db.id)
    await redu.list_redis()
    await expect(errors.ConflictError, redu.create_database(pg(db_password=PASSWORD)))
    await expect(errors.InvalidRequestError, redu.create_database(pg("other", flavor_id="nope", db_password=PASSWORD)))
    await expect(errors.NotFoundError, redu.get_database(424242))
    for fault, exc_type in [
        (Fault(path="/v1/me", status=429, retry_after="0", times=-1), errors.RateLimitedError),
        (Fault(path="/v1/me", status=503, times=-1), errors.ServerError),
        (Fault(path="/v1/me", status=502, body="html", times=-1), errors.ServerError),
        (Fault(path="/v1/me", drop=True, times=-1), errors.TransportError),
        (Fault(path="/v1/me", timeout=True, times=-1), errors.TransportError),
        (Fault(path="/v1/me", body="not-json", times=-1), errors.ResponseFormatError),
        (Fault(path="/v1/me", body="wrong-shape", times=-1), errors.ResponseFormatError),
        (Fault(path="/v1/databases", method="POST", status=502), errors.ServerError),
        (Fault(path="/v1/databases", method="POST", apply=True, drop=True), errors.TransportError),
    ]:
        sandbox.faults.clear()
        sandbox.faults.add(fault)
        call = redu.create_database(pg(f"db-{len(caught)}", db_password=PASSWORD)) if fault.method else redu.me()
        await expect(exc_type, call)
    sandbox.faults.clear()
    sandbox.faults.add(Fault(method="DELETE", apply=True, drop=True))
    await redu.delete_redis(cache.id)
    await redu.delete_database(db.id)
    return cache.password.get_secret_value()


async def test_secrets_never_leak_in_process(logs: LogTrap) -> None:
    sandbox = Sandbox(provisioning_seconds=0, api_keys={KEY: Account("usr_1", "alice", "alice@example.com")})
    caught: list[BaseException] = []
    retry = RetryPolicy(attempts=2, backoff_initial=0.01, backoff_max=0.01, retry_after_max=0.01)
    async with sandbox.client(retry=retry, timeout=0.1) as redu:
        assert KEY not in repr(redu) and KEY not in str(redu)
        generated = await exercise(redu, sandbox, caught)

    # The same key, rejected (401) and read-only (403).
    rejecting = Sandbox(api_keys={"someone-else": Account("usr_2", "bob", "bob@example.com")})
    async with rejecting.client(KEY, retry=NO_RETRY) as redu:
        with pytest.raises(errors.AuthenticationError) as info:
            await redu.me()
        caught.append(info.value)
    read_only = Sandbox(api_keys={KEY: Account("usr_3", "carol", "carol@example.com", read_only=True)})
    async with read_only.client(KEY, retry=NO_RETRY) as redu:
        with pytest.raises(errors.PermissionDeniedError) as info:
            await redu.create_database(pg(db_password=PASSWORD))
        caught.append(info.value)

    assert len(caught) == 14
    assert_clean([t for exc in caught for t in describe(exc)], KEY, PASSWORD, generated)
    logged = logs.text()
    assert "GET /me" in logged and "retrying" in logged  # the logs were really captured
    assert_clean([logged], KEY, PASSWORD, generated)


async def test_secrets_never_leak_over_a_real_socket(logs: LogTrap) -> None:
    """The same over loopback: httpcore2 and uvicorn log too."""
    sandbox = Sandbox(provisioning_seconds=0, api_keys={KEY: Account("usr_1", "alice", "alice@example.com")})
    caught: list[BaseException] = []
    with running_sandbox(sandbox=sandbox, log_level="debug") as (base_url, _):
        logs.debug_all()  # uvicorn set its own levels on start-up
        retry = RetryPolicy(attempts=2, backoff_initial=0.01, backoff_max=0.01, retry_after_max=0.01)
        async with ReduClient(KEY, base_url=base_url, retry=retry, timeout=0.25) as redu:
            generated = await exercise(redu, sandbox, caught)
    await sandbox.aclose()
    assert len(caught) == 12
    assert_clean([t for exc in caught for t in describe(exc)], KEY, PASSWORD, generated)
    logged = logs.text()
    assert "send_request_headers" in logged  # httpcore2's DEBUG trace was captured
    assert_clean([logged], KEY, PASSWORD, generated)


async def test_a_body_echoing_the_key_is_scrubbed() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        key = request.headers["x-api-key"]
        return httpx2.Response(400, json={"error": {"code": "bad", "message": f"key {key} is malformed"}})

    async with ReduClient(KEY, base_url="https://api.example.test/v1", transport=httpx2.MockTransport(handler)) as redu:
        with pytest.raises(errors.InvalidRequestError) as info:
            await redu.me()
    assert info.value.message == "key [REDACTED] is malformed"
    assert_clean(describe(info.value), KEY)
