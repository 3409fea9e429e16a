"""Every tool, driven through a real in-process ``mcp.Client`` in both protocol eras, against the sandbox.

Each successful result is checked three ways: the client's own output-schema validation (it raises on
a mismatch), our own ``jsonschema`` validation against the listed ``outputSchema``, and asserts on the
fields and values. Failures must be error results a model can act on: status, the API's message, and
a next step.
"""

from __future__ import annotations

import functools
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client
from mcp.types import Tool

from redu_mcp.sandbox import Sandbox
from redu_mcp.sandbox.store import SEED_FLAVORS, SEED_KEYPAIRS, SEED_NETWORKS, SEED_SECURITY_GROUPS
from redu_mcp.server import TOOLS, Settings, build_server
from tests.helpers import CREATE_ARGS, FAST_RETRY, connect, create, stays_still, until

SPECS = {spec.name: spec for spec in TOOLS}
ALL_TOOLS = set(SPECS)

#: A valid argument set for every tool (the instance ids need not exist).
VALID_ARGS: dict[str, dict[str, Any]] = {
    "list_databases": {},
    "get_database": {"id": 1},
    "create_database": dict(CREATE_ARGS, name="orders"),
    "delete_database": {"id": 1, "confirm_name": "orders"},
    "list_redis": {},
    "get_redis": {"id": 1},
    "create_redis": dict(CREATE_ARGS, name="cache"),
    "delete_redis": {"id": 1, "confirm_name": "cache"},
    "wait_for_ready": {"kind": "redis", "id": 1, "timeout_seconds": 1},
    "list_create_options": {},
    "whoami": {},
    "check_connection": {"kind": "database", "id": 1},
    "describe_database": {"id": 1},
    "run_sql": {"id": 1, "query": "SELECT 1"},
    "list_migrations": {"id": 1},
    "apply_migration": {"id": 1, "version": "1", "name": "first", "sql": "SELECT 1"},
    "describe_redis": {"id": 1},
    "run_redis_command": {"id": 1, "command": "GET", "arguments": ["k"]},
}

FAST_WAIT = {"timeout_seconds": 20}


# --- helpers -------------------------------------------------------------------------------------


class Checked:
    """A client plus the listed tools, whose calls check structured results against the schema."""

    def __init__(self, client: Client, tools: dict[str, Tool]) -> None:
        self.client = client
        self.tools = tools

    async def ok(self, name: str, arguments: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        result = await self.client.call_tool(name, arguments or {}, **options)
        assert not result.is_error, result.content[0].text
        structured = result.structured_content
        assert isinstance(structured, dict)
        jsonschema.validate(structured, self.tools[name].output_schema)
        # The text block is the same result as compact JSON without empty fields (what the model reads).
        text = result.content[0].text
        assert json.loads(text) == without_nulls(structured)
        assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)  # compact
        return structured

    async def error(self, name: str, arguments: dict[str, Any] | None = None, **options: Any) -> str:
        result = await self.client.call_tool(name, arguments or {}, **options)
        assert result.is_error, f"{name} unexpectedly succeeded: {result.structured_content}"
        assert result.structured_content is None
        return result.content[0].text


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


async def checked(client: Client) -> Checked:
    return Checked(client, {t.name: t for t in (await client.list_tools()).tools})


def instance_path(kind: str, id: int) -> str:
    return f"/v1/{'databases' if kind == 'database' else 'redis'}/{id}"


@pytest.fixture
def slow_sandbox() -> Sandbox:
    """Instances stay in 'provisioning' for the whole test."""
    return Sandbox(provisioning_seconds=600)


@pytest.fixture
def slow_server(slow_sandbox: Sandbox, make_settings: Callable[..., Settings]):
    return build_server(make_settings(), client=slow_sandbox.client(retry=FAST_RETRY))


# --- the tool list -------------------------------------------------------------------------------


async def test_the_hints_a_client_sees_match_the_level_that_offers_the_tool(make_server):
    """What a client reads in a tool's hints agrees with the lowest access level that lists it: ``read``
    offers read-only tools only (a look-up that serves creates is read-only yet offered from ``create``);
    only destroying tools need ``full``; below ``full`` a destructive tool is
    offered only where the operator allowed data writes (``--data write``: confirmed like a delete).
    Read from tools/list at each level, as a client sees it, not from the profiles."""
    first_level: dict[str, str] = {}
    hints: dict[str, dict[str, bool]] = {}
    for level in ("read", "create", "full"):
        data = "read" if level == "read" else "write"  # the most each level allows
        async with connect(make_server(access=level, data=data)) as client:
            for tool in (await client.list_tools()).tools:
                first_level.setdefault(tool.name, level)
                wire = tool.model_dump(mode="json", by_alias=True, exclude_none=True)["annotations"]
                # As first offered (a tool in two variants, run_sql, reads at read and writes above).
                hints.setdefault(tool.name, {k: wire[k] for k in ("readOnlyHint", "destructiveHint", "idempotentHint")})
    assert set(first_level) == ALL_TOOLS
    for name, level in first_level.items():
        assert level != "read" or hints[name]["readOnlyHint"], (name, hints[name])  # read offers reads only
        assert level != "full" or hints[name]["destructiveHint"], (name, hints[name])
        assert not (hints[name]["readOnlyHint"] and hints[name]["destructiveHint"]), (name, hints[name])
    assert {name for name, level in first_level.items() if level == "full"} == {"delete_database", "delete_redis"}
    assert {"list_databases", "wait_for_ready"} <= {name for name, level in first_level.items() if level == "read"}
    creates = ("create_database", "create_redis")
    assert all(first_level[n] == "create" and not hints[n]["idempotentHint"] for n in creates)  # never re-sent
    async with connect(make_server(access="create")) as client:  # data writes not allowed (the default)
        assert not [t.name for t in (await client.list_tools()).tools if t.annotations.destructive_hint]


async def test_every_tool_is_described_annotated_and_typed(make_server, mode):
    async with connect(make_server(data="write"), mode) as client:  # every tool, the data tools' too
        listed = (await client.list_tools()).tools
    tools = {t.name: t for t in listed}
    assert set(tools) == ALL_TOOLS
    for name, tool in tools.items():
        assert tool.title, name
        assert tool.description and len(tool.description) > 40, name
        wire = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
        hints = wire.get("annotations", {})
        # All four set explicitly (a missing hint means the client falls back to the spec's defaults).
        assert {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"} <= set(hints), name
        profile = SPECS[name].profile
        assert (hints["readOnlyHint"], hints["destructiveHint"], hints["idempotentHint"], hints["openWorldHint"]) == (
            profile.read_only,
            profile.destructive,
            profile.idempotent,
            True,
        ), name
        assert hints.get("title") == tool.title, name
        assert tool.output_schema and tool.output_schema.get("type") == "object", name
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert tool.input_schema["type"] == "object", name
        # The server's internals (context, resolvers) never leak into the arguments the model sees.
        assert not {"ctx", "target", "decision"} & set(tool.input_schema.get("properties", {})), name


# --- lookups and identity ------------------------------------------------------------------------


async def test_one_call_lists_everything_a_create_needs(server, sandbox, mode):
    async with connect(server, mode) as client:
        options = await (await checked(client)).ok("list_create_options")
    assert options["flavors"] == [
        {"id": f["id"], "name": f["name"], "vcpus": f["vcpus"], "ram_mib": f["ram"], "disk_gb": f["disk"]}
        for f in SEED_FLAVORS
    ]
    assert options["networks"] == [{"id": n["id"], "name": n["name"]} for n in SEED_NETWORKS]
    assert options["keypairs"] == [k["name"] for k in SEED_KEYPAIRS]
    assert [g["name"] for g in options["security_groups"]] == [g["name"] for g in SEED_SECURITY_GROUPS]
    assert options["default_security_groups"] == ["default"]
    assert options["database"] == {
        "versions": ["16", "15", "14"],
        "version": "16",
        "db_name": "app",
        "db_user": "appuser",
    }
    assert options["redis"] == {"versions": ["7", "6"], "version": "7"}
    assert "public_key" not in json.dumps(options)  # only what a create needs
    assert sorted(p for _, p in sandbox.requests) == [
        "/v1/flavors",
        "/v1/keypairs",
        "/v1/networks",
        "/v1/security_groups",
    ]


async def test_whoami_names_the_user_and_the_mode(make_server, mode):
    server = make_server(access="create")
    async with connect(server, mode) as client:
        me = await (await checked(client)).ok("whoami")
    assert me["user"]["username"] == "sandbox"
    assert me["user"]["id"] == "usr_sandbox"
    assert me["sandbox"] is True
    assert me["access"] == "create"
    # In the built-in sandbox no Redu API is called: it never claims the real API's URL.
    assert me["api_url"] is None and "sandbox" in me["message"] and "not real" in me["message"]


async def test_whoami_names_the_api_it_calls(sandbox, make_settings, mode):
    settings = make_settings(sandbox=False, api_key="sk-test-1234567890", api_url="https://api.example.test/v1")
    async with connect(build_server(settings, client=sandbox.client(retry=FAST_RETRY)), mode) as client:
        me = await (await checked(client)).ok("whoami")
    assert me["api_url"] == "https://api.example.test/v1" and me["sandbox"] is False and me.get("message") is None


# --- create, get, list, delete -------------------------------------------------------------------


async def test_create_get_list_delete_database(server, sandbox, credentials_dir, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        created = await c.ok(
            "create_database", dict(CREATE_ARGS, name="orders", db_name="shop", db_user="shopper", version="15")
        )
        instance = created["instance"]
        assert created["created"] is True
        assert instance["kind"] == "database" and instance["name"] == "orders"
        assert instance["status"] == "provisioning" and instance["ready"] is False
        assert (instance["version"], instance["db_name"], instance["db_user"]) == ("15", "shop", "shopper")
        assert created["connection"] is None  # no host to connect to yet
        # The one-time password went to a private file, never into the result.
        assert created["password_delivery"] == "file"
        assert created["password"] is None
        path = Path(created["credentials_file"])
        assert path.parent == credentials_dir
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "PGPASSWORD=" in path.read_text()
        assert "wait_for_ready" in created["next_step"]
        id = instance["id"]

        got = await c.ok("get_database", {"id": id})
        assert (got["id"], got["name"], got["kind"], got["port"]) == (id, "orders", "database", 5432)
        assert "flavor_id" not in got  # only declared fields leave the server

        listed = await c.ok("list_databases")
        assert listed["kind"] == "database" and listed["total"] == 1 and listed["next_step"] is None
        assert [i["name"] for i in listed["instances"]] == ["orders"]

        again = await c.ok("create_database", dict(CREATE_ARGS, name="orders"))
        assert again["created"] is False and again["instance"]["id"] == id
        # Its password is where this server saved it; the request's other values are reported, not applied.
        assert again["password_delivery"] == "file" and again["credentials_file"] == str(path)
        assert again["differences"] == [
            {"field": "db_name", "requested": "app", "existing": "shop"},
            {"field": "db_user", "requested": "appuser", "existing": "shopper"},
            {"field": "version", "requested": "16", "existing": "15"},
        ]

        deleted = await c.ok("delete_database", {"id": id, "confirm_name": "orders"})
        assert deleted == {
            "deleted": True,
            "kind": "database",
            "id": id,
            "name": "orders",
            "message": deleted["message"],
        }
        assert "orders" in deleted["message"] and f"Its credentials file {path} was removed" in deleted["message"]
        assert not path.exists()
        assert (await c.ok("list_databases"))["total"] == 0
    assert sandbox.count("POST", "/v1/databases") == 1
    assert sandbox.count("DELETE", f"/v1/databases/{id}") == 1


async def test_create_get_list_delete_redis(server, sandbox, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        created = await c.ok("create_redis", dict(CREATE_ARGS, name="cache", version="6"))
        instance = created["instance"]
        assert (instance["kind"], instance["name"], instance["version"]) == ("redis", "cache", "6")
        assert instance["db_name"] is None and instance["db_user"] is None
        assert created["instance"]["port"] == 6379 and created["connection"] is None
        assert "REDIS_PASSWORD=" in Path(created["credentials_file"]).read_text()
        id = instance["id"]

        got = await c.ok("get_redis", {"id": id})
        assert (got["id"], got["name"], got["kind"], got["version"]) == (id, "cache", "redis", "6")

        listed = await c.ok("list_redis")
        assert listed["kind"] == "redis" and [i["id"] for i in listed["instances"]] == [id]

        refused = await c.ok("delete_redis", {"id": id, "confirm_name": "not-cache"})
        assert refused["deleted"] is False and "is not the name of" in refused["message"]
        assert sandbox.count("DELETE", f"/v1/redis/{id}") == 0

        deleted = await c.ok("delete_redis", {"id": id, "confirm_name": "cache"})
        assert deleted["deleted"] is True and deleted["kind"] == "redis"
        assert (await c.ok("list_redis"))["total"] == 0


async def test_lists_are_newest_first_and_say_how_to_see_the_rest(server, sandbox, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        for kind, tool in (("database", "list_databases"), ("redis", "list_redis")):
            ids = [(await create(client, kind, f"{kind}-{n}"))["instance"]["id"] for n in range(3)]
            newest = list(reversed(ids))
            capped = await c.ok(tool, {"limit": 2})
            assert capped["total"] == 3 and [i["id"] for i in capped["instances"]] == newest[:2]
            assert f"{tool} with offset=2" in capped["next_step"] and "of 3" in capped["next_step"]
            rest = await c.ok(tool, {"limit": 2, "offset": 2})
            assert [i["id"] for i in rest["instances"]] == newest[2:] and rest["next_step"] is None
            exact = await c.ok(tool, {"limit": 3})
            assert exact["total"] == 3 and exact["next_step"] is None
            named = await c.ok(tool, {"name_contains": f"{kind}-1"})
            assert [i["id"] for i in named["instances"]] == [ids[1]] and named["total"] == 1
            none = await c.ok(tool, {"status": "error"})
            assert none["total"] == 0 and "match" in none["next_step"]

        before = len(sandbox.requests)
        for bad in (0, 101, "many"):
            text = await c.error("list_databases", {"limit": bad})
            assert "Invalid arguments for list_databases" in text and "limit" in text
        assert len(sandbox.requests) == before  # refused before any upstream call


# --- upstream errors -----------------------------------------------------------------------------


async def test_missing_instance_is_a_404_error_with_a_next_step(server, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        for tool, collection in (("get_database", "list_databases"), ("get_redis", "list_redis")):
            text = await c.error(tool, {"id": 4242})
            assert "There is no" in text and "id 4242 (HTTP 404)" in text
            assert f"Next step: call {collection}" in text


async def test_an_id_of_the_other_kind_names_the_tool_that_fits(server, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        cache = (await create(client, "redis", "cache"))["instance"]["id"]
        text = await c.error("get_database", {"id": cache})
        assert f"The Redis instance 'cache' (id {cache}) is another instance (ids are numbered per kind)" in text
        assert "confirm with the user that 'cache' is the one they mean" in text
        assert f"if it is, call get_redis with id={cache}." in text
        text = await c.error("wait_for_ready", {"kind": "database", "id": cache, "timeout_seconds": 5})
        assert f"call wait_for_ready with kind='redis' and id={cache}." in text
        # A delete never points at another instance: a database with this id is simply not there.
        gone = await c.ok("delete_database", {"id": cache, "confirm_name": "cache"})
        assert gone["deleted"] is False and "Nothing to delete" in gone["message"] and "redis" not in gone["message"]
        assert (await c.ok("get_redis", {"id": cache}))["name"] == "cache"  # nothing was deleted


async def test_an_unknown_look_up_value_is_answered_with_the_valid_ones(server, sandbox, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        text = await c.error("create_redis", dict(CREATE_ARGS, name="cache", flavor_id="xxl"))
        assert "flavor_id 'xxl' is not one of: '1' (db.small), '2' (db.medium), 'm1.large'." in text
        assert "Nothing was created" in text and "call create_redis again" in text
        text = await c.error("create_database", dict(CREATE_ARGS, name="orders", flavor_id="db.small"))
        assert "flavor_id 'db.small' is the name, not the id: pass flavor_id='1'." in text
        text = await c.error("create_database", dict(CREATE_ARGS, name="orders", network_id="private"))
        assert "pass network_id='net-private'" in text
        assert "/v1" not in text and "GET " not in text  # tool terms, never HTTP paths
        assert (await c.ok("list_redis"))["total"] == 0
        assert (await c.ok("list_databases"))["total"] == 0
        # A bare number is the same opaque id.
        created = await c.ok("create_database", dict(CREATE_ARGS, name="orders", flavor_id=1))
        assert created["created"] is True


async def test_wrong_api_key_is_a_401_error_pointing_at_the_key(sandbox, make_settings, mode):
    server = build_server(make_settings(), client=sandbox.client("not-a-valid-key", retry=FAST_RETRY))
    async with connect(server, mode) as client:
        c = await checked(client)
        for tool, args in (("whoami", {}), ("list_databases", {}), ("create_redis", VALID_ARGS["create_redis"])):
            text = await c.error(tool, args)
            assert "HTTP 401" in text, tool
            assert "Invalid API key" in text, tool
            assert "REDU_API_KEY" in text, tool
            assert "not-a-valid-key" not in text, tool
    assert sandbox.count("POST") == 0


async def test_unconfigured_server_answers_and_every_tool_says_how_to_configure(make_settings, mode):
    server = build_server(make_settings(sandbox=False, api_key=None, data="write"))
    async with connect(server, mode) as client:
        assert "REDU_API_KEY" in (client.instructions or "")
        c = await checked(client)
        assert set(c.tools) == ALL_TOOLS
        for name in sorted(ALL_TOOLS):
            text = await c.error(name, VALID_ARGS[name])
            assert "REDU_API_KEY" in text, (name, text)
            assert "--sandbox" in text, (name, text)


# --- wait_for_ready ------------------------------------------------------------------------------


class Progress:
    def __init__(self) -> None:
        self.events: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))

    @property
    def messages(self) -> list[str]:
        return [m or "" for _, _, m in self.events]


async def test_wait_reports_status_on_every_poll_and_returns_connection_details(server, sandbox, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        created = await create(client, "database", "orders")
        id = created["instance"]["id"]
        progress = Progress()
        waited = await c.ok("wait_for_ready", {"kind": "database", "id": id, **FAST_WAIT}, progress_callback=progress)
        polled = sandbox.count("GET", instance_path("database", id))
        got = await c.ok("get_database", {"id": id})

    assert waited["ready"] is True and waited["instance"]["status"] == "ready"
    # One progress notification per poll, each carrying the status it saw; one GET per poll.
    assert polled >= 2 and len(progress.events) == polled
    assert all("status: " in m for m in progress.messages)
    assert "status: provisioning" in progress.messages[0]
    assert "status: ready" in progress.messages[-1]
    values = [p for p, _, _ in progress.events]
    assert values == sorted(values)
    assert {total for _, total, _ in progress.events} == {FAST_WAIT["timeout_seconds"]}

    host = got["host"]
    assert host and waited["instance"]["host"] == host and waited["instance"]["ready"] is True
    assert waited["connection"] == {
        "host": host,
        "port": 5432,
        "user": "appuser",
        "database": "app",
        "uri": f"postgresql://appuser@{host}:5432/app",
    }
    # The credentials file written at create time now has the host too.
    assert waited["credentials_file"] == created["credentials_file"]
    env = Path(waited["credentials_file"]).read_text()
    assert f"PGHOST={host}" in env and "DATABASE_URL=postgresql://appuser:" in env
    assert "Ready" in waited["next_step"]


async def test_wait_polls_at_once(slow_sandbox, make_settings, mode):
    """With a poll interval far beyond the deadline, the only poll that can happen is the first."""
    server = build_server(make_settings(poll_interval_seconds=120), client=slow_sandbox.client(retry=FAST_RETRY))
    async with connect(server, mode) as client:
        c = await checked(client)
        id = (await create(client, "redis", "cache"))["instance"]["id"]
        progress = Progress()
        waited = await c.ok(
            "wait_for_ready", {"kind": "redis", "id": id, "timeout_seconds": 0.3}, progress_callback=progress
        )
    assert slow_sandbox.count("GET", instance_path("redis", id)) == 1
    assert waited["instance"]["status"] == "provisioning"
    assert len(progress.events) == 1 and "status: provisioning" in progress.messages[0]


async def test_wait_timeout_returns_not_ready_with_a_next_step(slow_server, slow_sandbox, mode):
    async with connect(slow_server, mode) as client:
        c = await checked(client)
        id = (await create(client, "redis", "cache"))["instance"]["id"]
        waited = await c.ok("wait_for_ready", {"kind": "redis", "id": id, "timeout_seconds": 0.3})
    assert waited["ready"] is False
    assert waited["instance"]["status"] == "provisioning"
    assert waited["instance"]["id"] == id and waited["instance"]["ready"] is False
    assert waited["connection"] is None
    assert 0.3 <= waited["waited_seconds"] < 5 and waited["seconds_since_created"] >= 0
    assert f"Call wait_for_ready again with kind='redis' and id={id}" in waited["next_step"]
    assert "since it was created" in waited["next_step"] and "do not create another" in waited["next_step"]
    assert slow_sandbox.count("POST", "/v1/redis") == 1


async def test_wait_on_a_failed_provisioning_is_an_error(server, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        id = (await create(client, "redis", "fail-cache"))["instance"]["id"]
        text = await c.error("wait_for_ready", {"kind": "redis", "id": id, **FAST_WAIT})
    assert "Provisioning failed" in text
    assert "'fail-cache'" in text and "status 'error'" in text
    assert "delete_redis" in text  # the next step


async def test_wait_on_a_deleted_instance_fails_clearly(server, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        id = (await create(client, "database", "gone"))["instance"]["id"]
        await c.ok("delete_database", {"id": id, "confirm_name": "gone"})
        with anyio.fail_after(10):  # a hang is the failure this guards against
            text = await c.error("wait_for_ready", {"kind": "database", "id": id, **FAST_WAIT})
    assert f"PostgreSQL database 'gone' (id {id}) was deleted through this server at " in text
    assert "by a local client (confirmed by confirm_name)" in text and "do not wait for it" in text


async def test_wait_ends_when_the_instance_is_deleted_meanwhile(slow_server, mode):
    async with connect(slow_server, mode) as client:
        c = await checked(client)
        id = (await create(client, "redis", "short-lived"))["instance"]["id"]
        progress = Progress()
        outcome: list[str] = []

        async def wait() -> None:
            outcome.append(
                await c.error(
                    "wait_for_ready",
                    {"kind": "redis", "id": id, "timeout_seconds": 45},
                    progress_callback=progress,
                )
            )

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                while not progress.events:
                    await anyio.sleep(0.01)
                await c.ok("delete_redis", {"id": id, "confirm_name": "short-lived"})
    assert f"Redis instance 'short-lived' (id {id}) was deleted through this server" in outcome[0]
    assert "status: provisioning" in progress.messages[0]


async def test_cancelled_wait_stops_polling(slow_server, slow_sandbox, mode):
    """A wait the client cancels stops polling, while a second wait on the same server (the control)
    polls on: the server did not simply stop serving."""
    async with connect(slow_server, mode) as client:
        c = await checked(client)
        id = (await create(client, "redis", "cache"))["instance"]["id"]
        control = (await create(client, "redis", "control"))["instance"]["id"]
        path, control_path = instance_path("redis", id), instance_path("redis", control)
        progress = Progress()
        args = {"kind": "redis", "timeout_seconds": 45}
        scope = anyio.CancelScope()

        async def wait() -> None:
            with scope:
                await client.call_tool("wait_for_ready", dict(args, id=id), progress_callback=progress)

        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(client.call_tool, "wait_for_ready", dict(args, id=control)))
            tg.start_soon(wait)
            # It polls: two polls seen upstream and reported, then the client cancels the call.
            await until(lambda: slow_sandbox.count("GET", path) >= 2 and len(progress.events) >= 2, "two polls")
            scope.cancel()
            await stays_still(
                lambda: slow_sandbox.count("GET", path),
                lambda: slow_sandbox.count("GET", control_path),
                "the cancelled wait's polls",
            )
            tg.cancel_scope.cancel()  # the control's wait too
        # The server is unharmed and the client still usable.
        assert (await c.ok("get_redis", {"id": id}))["status"] == "provisioning"


async def test_concurrent_waits_share_one_poller(make_settings, mode):
    sandbox = Sandbox(provisioning_seconds=0.4)
    server = build_server(make_settings(), client=sandbox.client(retry=FAST_RETRY))
    args = {"kind": "redis", "timeout_seconds": 20}
    async with connect(server, mode) as client:
        c = await checked(client)
        alone = (await create(client, "redis", "alone"))["instance"]["id"]
        single_progress = Progress()
        single = await c.ok("wait_for_ready", dict(args, id=alone), progress_callback=single_progress)
        single_gets = sandbox.count("GET", instance_path("redis", alone))

        shared = (await create(client, "redis", "shared"))["instance"]["id"]
        results: list[dict[str, Any]] = []
        progress = [Progress() for _ in range(10)]

        async def wait(n: int) -> None:
            results.append(await c.ok("wait_for_ready", dict(args, id=shared), progress_callback=progress[n]))

        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(wait, n)
        shared_gets = sandbox.count("GET", instance_path("redis", shared))

    assert single["ready"] is True and single_gets == len(single_progress.events) >= 2
    assert len(results) == 10 and all(r["ready"] for r in results)
    assert all(p.events and "status: ready" in p.messages[-1] for p in progress)  # every waiter got progress
    total_polls = sum(len(p.events) for p in progress)  # the polls each waiter saw
    # Ten separate pollers would cost about ten times one wait; one shared poller costs about one.
    assert shared_gets <= 2 * single_gets + 1, (shared_gets, single_gets)
    assert shared_gets * 4 <= total_polls, (shared_gets, total_polls)


async def test_invalid_wait_arguments_are_refused_before_any_call(server, sandbox, mode):
    async with connect(server, mode) as client:
        c = await checked(client)
        for bad in (
            {"kind": "mysql", "id": 1},
            {"kind": "redis", "id": 0},
            {"kind": "redis", "id": 1, "timeout_seconds": 0},
            {"kind": "redis", "id": 1, "timeout_seconds": 46},  # each call stays under a client's 60 s
            {"kind": "redis", "id": 1, "poll_interval_seconds": 0.05},  # the server decides how often to poll
        ):
            text = await c.error("wait_for_ready", bad)
            assert "Invalid arguments for wait_for_ready" in text, bad
            assert "Nothing was sent" in text
    assert sandbox.requests == []
