"""An independent reading of the API: the library and the sandbox, each against the documented literals.

``tests/api_contract.py`` holds the API's documented requests and responses, written by hand from the
docs. Here:

* the **API library** talks to a stand-in that knows only those literals (an ``httpx2.MockTransport``):
  every request it sends must be a documented one (method, path, ``x-api-key``, body field names and
  defaults), and it must read every documented answer (201 and 204, envelopes, bare arrays, wrapped
  keypairs, ``db_version`` against ``version``, the ``/v1/me`` shape, the 401 envelope);
* the **sandbox** must answer the same documented requests on the same paths, with the same field
  names, types, ports and statuses.

Both the library and the sandbox are built from ``redu_mcp.api.KINDS``; a misreading of the API that
they share passes every other test, and fails here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from redu_mcp import api
from redu_mcp.api import DatabaseCreate, RedisCreate, ReduClient, RetryPolicy
from redu_mcp.sandbox import DEFAULT_API_KEY, Sandbox
from tests import api_contract as doc

KEY = "sk-contract-key-0123456789"
BASE = "https://api.redu.cloud/v1"
#: The look-up values of a create: opaque ids and a name from the documented look-ups.
REFS = {"flavor_id": "m1.small", "network_id": "net-1", "keypair_name": "default-key"}


class DocumentedApi:
    """Answers exactly the documented requests with the documented literals; anything else is a 404
    the test sees (``unexpected``). Records every request."""

    def __init__(self, *, instance_list: Any = None, keypairs: Any = None) -> None:
        self.requests: list[httpx2.Request] = []
        self.unexpected: list[str] = []
        self.instance_list = doc.DATABASES_BARE if instance_list is None else instance_list
        self.keypairs = doc.KEYPAIRS if keypairs is None else keypairs

    def client(self, key: str = KEY) -> ReduClient:
        transport = httpx2.MockTransport(self.handle)
        return ReduClient(key, base_url=BASE, transport=transport, retry=RetryPolicy.none())

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.headers.get(doc.KEY_HEADER) != KEY:
            return httpx2.Response(doc.UNAUTHORIZED_STATUS, json=doc.UNAUTHORIZED)
        method, path = request.method, request.url.path
        cursor = request.url.params.get("cursor")
        gets: dict[str, Any] = {
            doc.ME_PATH: doc.ME,
            doc.KEYPAIRS_PATH: self.keypairs,
            doc.SECURITY_GROUPS_PATH: doc.SECURITY_GROUPS,
            doc.FLAVORS_PATH: doc.FLAVORS,
            doc.NETWORKS_PATH: doc.NETWORKS,
            doc.DATABASES_PATH: self.instance_list,
            doc.DATABASE_PATH.format(id=1): doc.DATABASE_READY,
            doc.REDIS_PATH.format(id=1): doc.REDIS_READY,
        }
        if method == "GET" and path == doc.REDIS_PATH_ALL and cursor in doc.REDIS_PAGES:
            return httpx2.Response(200, json=doc.REDIS_PAGES[cursor])
        if method == "GET" and path in gets:
            return httpx2.Response(200, json=gets[path])
        if method == "POST" and path == doc.DATABASES_PATH:
            return httpx2.Response(201, json=doc.DATABASE_CREATED)
        if method == "POST" and path == doc.REDIS_PATH_ALL:
            return httpx2.Response(201, json=doc.REDIS_CREATED)
        if method == "DELETE" and path in (doc.DATABASE_PATH.format(id=1), doc.REDIS_PATH.format(id=1)):
            return httpx2.Response(doc.DELETED_STATUS)
        self.unexpected.append(f"{method} {path}")
        return httpx2.Response(404, json={"error": {"code": "not_found", "message": "not a documented request"}})

    def bodies(self, method: str, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if (r.method, r.url.path) == (method, path)]


# --- the API library against the documented API -------------------------------------------------------------


async def test_a_database_create_sends_the_documented_body_and_reads_the_documented_answer():
    documented = DocumentedApi()
    async with documented.client() as redu:
        created = await redu.create_database(DatabaseCreate(name="my-db", **REFS))
    [body] = documented.bodies("POST", doc.DATABASES_PATH)
    assert set(body) <= doc.DATABASE_CREATE_FIELDS  # no field the API does not document
    assert {"name", "flavor_id", "network_id", "keypair_name"} <= set(body)  # the required ones
    assert {k: body.get(k, v) for k, v in doc.DATABASE_CREATE_DEFAULTS.items()} == doc.DATABASE_CREATE_DEFAULTS
    assert "db_version" not in body and body.get("version", "16") in doc.DATABASE_VERSIONS  # the request says version
    assert "db_password" not in body  # omitted: the API generates one
    # The documented answer, read field by field (the response says db_version; the id is an integer).
    assert (created.id, created.name, created.db_name, created.db_user) == (1, "my-db", "app", "appuser")
    assert (created.db_version, created.status, created.floating_ip) == ("16", "provisioning", None)
    assert created.port == doc.POSTGRES_PORT == 5432 and created.created_at == "2026-05-30T12:00:00Z"
    assert created.db_password is not None
    assert created.db_password.get_secret_value() == "the-plaintext-password-shown-once"
    assert documented.unexpected == []


async def test_a_redis_create_sends_the_documented_body_and_reads_the_documented_answer():
    documented = DocumentedApi()
    async with documented.client() as redu:
        created = await redu.create_redis(RedisCreate(name="my-cache", password="typed-password-123", **REFS))
    [body] = documented.bodies("POST", doc.REDIS_PATH_ALL)
    assert set(body) <= doc.REDIS_CREATE_FIELDS
    assert body["password"] == "typed-password-123"  # the Redis body says password, not db_password
    assert {k: body.get(k, v) for k, v in doc.REDIS_CREATE_DEFAULTS.items()} == doc.REDIS_CREATE_DEFAULTS
    assert (created.id, created.name, created.version, created.status) == (1, "my-cache", "7", "provisioning")
    assert created.port == doc.REDIS_PORT == 6379 and created.floating_ip is None
    assert created.password is not None and created.password.get_secret_value() == "redis-password-shown-once"
    assert documented.unexpected == []


async def test_reads_and_deletes_use_the_documented_paths_and_statuses():
    documented = DocumentedApi()
    async with documented.client() as redu:
        database, cache = await redu.get_database(1), await redu.get_redis(1)
        assert await redu.delete_instance(api.DATABASE, 1) == doc.DELETED_STATUS
        assert await redu.delete_instance(api.REDIS, 1) == doc.DELETED_STATUS
    assert (database.status, database.floating_ip, database.db_version, database.port) == (
        "ready",
        "203.0.113.7",
        "16",
        5432,
    )
    assert (cache.status, cache.floating_ip, cache.version, cache.port) == ("ready", "203.0.113.8", "7", 6379)
    sent = [(r.method, r.url.path) for r in documented.requests]
    assert sent == [
        ("GET", "/v1/databases/1"),
        ("GET", "/v1/redis/1"),
        ("DELETE", "/v1/databases/1"),
        ("DELETE", "/v1/redis/1"),
    ]
    assert all(r.headers[doc.KEY_HEADER] == KEY for r in documented.requests)
    assert documented.unexpected == []


async def test_every_documented_list_shape_is_read():
    documented = DocumentedApi()
    async with documented.client() as redu:
        assert [d.name for d in await redu.list_databases()] == ["my-db"]  # a bare array
        assert [r.name for r in await redu.list_redis()] == ["my-cache", "my-cache-2"]  # items, two pages
        [keypair] = await redu.list_keypairs()
        [group] = await redu.list_security_groups()
        assert [f.id for f in await redu.list_flavors()] == ["m1.small"]
        assert [n.id for n in await redu.list_networks()] == ["net-1"]
    assert (keypair.name, keypair.fingerprint) == ("default-key", "SHA256:documentedexamplefingerprint")
    assert (group.id, group.name, group.rules[0].port_range_min) == ("sg-1", "default", 5432)
    assert [r.url.params.get("cursor") for r in documented.requests if r.url.path == "/v1/redis"] == [None, "page-2"]
    assert documented.unexpected == []
    wrapped = DocumentedApi(keypairs=doc.KEYPAIRS_WRAPPED)  # the older pages: [{"keypair": {...}}]
    async with wrapped.client() as redu:
        assert [k.public_key for k in await redu.list_keypairs()] == [doc.KEYPAIRS["items"][0]["public_key"]]


async def test_me_and_the_documented_401():
    documented = DocumentedApi()
    async with documented.client() as redu:
        me = await redu.me()
    assert (me.id, me.username, me.email, me.roles) == ("usr_01HZX8YF2", "joe", "joe@example.com", ["user"])
    async with documented.client(key="sk-revoked") as redu:
        with pytest.raises(api.AuthenticationError) as refused:
            await redu.me()
    assert (refused.value.status, refused.value.code, refused.value.message) == (401, "unauthorized", "Invalid API key")
    assert [r.url.path for r in documented.requests] == ["/v1/me", "/v1/me"]


# --- the sandbox answers the documented API -------------------------------------------------------------------


def sandbox_http(sandbox: Sandbox, key: str | None = DEFAULT_API_KEY) -> httpx2.AsyncClient:
    """Plain HTTP to the in-process sandbox: the documented paths, no library in between."""
    headers = {doc.KEY_HEADER: key} if key is not None else {}
    return httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.redu.invalid", headers=headers)


def sandbox_refs(sandbox: Sandbox) -> dict[str, str]:
    """Look-up values the sandbox knows, read through the documented look-up paths."""
    return {
        "flavor_id": sandbox.store.flavors[0]["id"],
        "network_id": sandbox.store.networks[-1]["id"],
        "keypair_name": sandbox.store.keypairs[0]["name"],
    }


def same_types(documented: dict[str, Any], answered: dict[str, Any]) -> list[str]:
    """Fields whose JSON type differs (None matches str: an address is null until it is set)."""

    def kind(value: Any) -> str:
        return "str" if value is None else type(value).__name__

    return [k for k, v in documented.items() if k in answered and kind(answered[k]) != kind(v)]


@pytest.mark.parametrize(
    ("collection", "body", "created", "ready"),
    [
        (doc.DATABASES_PATH, {"name": "my-db"}, doc.DATABASE_CREATED, doc.DATABASE_READY),
        (doc.REDIS_PATH_ALL, {"name": "my-cache"}, doc.REDIS_CREATED, doc.REDIS_READY),
    ],
    ids=["postgresql", "redis"],
)
async def test_the_sandbox_answers_a_documented_create_read_and_delete(collection, body, created, ready):
    now = [0.0]
    sandbox = Sandbox(provisioning_seconds=10, clock=lambda: now[0])  # ready when the test says so
    async with sandbox_http(sandbox) as http:
        answered = await http.post(collection, json={**body, **sandbox_refs(sandbox)})
        assert answered.status_code in (200, 201, 202), answered.text  # any 2xx (the docs do not say)
        made = answered.json()
        assert set(created) <= set(made), set(created) - set(made)  # every documented field, same names
        assert same_types(created, made) == []
        assert (made["status"], made["port"], made["floating_ip"]) == ("provisioning", created["port"], None)
        assert not ({"db_version"} & set(made) and "version" in made)  # one version field, the documented one
        path = f"{collection}/{made['id']}"
        now[0] += 10
        read = (await http.get(path)).json()
        assert set(ready) <= set(read) and same_types(ready, read) == []
        assert read["status"] == "ready" and isinstance(read["floating_ip"], str)  # set once ready
        password_field = (set(created) - set(ready)).pop()  # the documented create-only field
        assert password_field not in read  # the password is shown once, by the create only
        listed = (await http.get(collection)).json()
        assert set(listed) == {"items", "next_cursor"} and [i["id"] for i in listed["items"]] == [made["id"]]
        deleted = await http.delete(path)
        assert (deleted.status_code, deleted.content) == (doc.DELETED_STATUS, b"")
        assert (await http.get(path)).status_code == 404


async def test_the_sandbox_defaults_a_create_as_the_docs_say():
    sandbox = Sandbox(provisioning_seconds=0)
    async with sandbox_http(sandbox) as http:
        made = (await http.post(doc.DATABASES_PATH, json={"name": "my-db", **sandbox_refs(sandbox)})).json()
        cache = (await http.post(doc.REDIS_PATH_ALL, json={"name": "my-cache", **sandbox_refs(sandbox)})).json()
        versioned = await http.post(
            doc.DATABASES_PATH, json={"name": "old-db", "version": "14", **sandbox_refs(sandbox)}
        )
    assert (made["db_name"], made["db_user"], made["db_version"]) == ("app", "appuser", "16")
    assert cache["version"] == "7"
    assert versioned.json()["db_version"] == "14"  # asked as version, answered as db_version


async def test_the_sandbox_answers_me_the_look_ups_and_the_401_as_documented():
    sandbox = Sandbox()
    async with sandbox_http(sandbox) as http:
        me = (await http.get(doc.ME_PATH)).json()
        keypairs = (await http.get(doc.KEYPAIRS_PATH)).json()
        groups = (await http.get(doc.SECURITY_GROUPS_PATH)).json()
        flavors = (await http.get(doc.FLAVORS_PATH)).json()
        networks = (await http.get(doc.NETWORKS_PATH)).json()
    assert set(me) == set(doc.ME) and same_types(doc.ME, me) == []
    for answered, documented in ((keypairs, doc.KEYPAIRS), (groups, doc.SECURITY_GROUPS)):
        assert set(answered) == set(documented)  # {"items": [...], "next_cursor": ...}
        item, example = answered["items"][0], documented["items"][0]
        assert set(example) <= set(item), set(example) - set(item)
    for answered in (flavors, networks):
        assert {"id", "name"} <= set(answered["items"][0])
    async with sandbox_http(sandbox, key="sk-revoked") as http:
        refused = await http.get(doc.ME_PATH)
    assert (refused.status_code, refused.json()) == (doc.UNAUTHORIZED_STATUS, doc.UNAUTHORIZED)
    async with sandbox_http(sandbox, key=None) as http:
        assert (await http.get(doc.DATABASES_PATH)).status_code == doc.UNAUTHORIZED_STATUS


async def test_the_sandbox_can_answer_the_older_bare_arrays():
    sandbox = Sandbox(list_style="bare")
    async with sandbox_http(sandbox) as http:
        await http.post(doc.DATABASES_PATH, json={"name": "my-db", **sandbox_refs(sandbox)})
        listed = (await http.get(doc.DATABASES_PATH)).json()
    assert isinstance(listed, list) and [i["name"] for i in listed] == ["my-db"]
