"""A flaky upstream, tool by tool: every injected fault × every one of the 14 tools, through a real MCP client.

Each case drives the server in-process (``mcp.Client``) against the sandbox with one fault injected on
the tool's main request (the POST of a create, the DELETE of a delete, the GET of everything else) and
asserts three things:

* the outcome: success after a retry, a clear error result (endpoint, status, next step; no stack
  trace, never a bare "Error executing tool X"), or a create reconciled by name;
* the exact number of upstream requests: no retry storms, and never a duplicate POST (one
  ``create_*`` call, at most one instance);
* that the server answers the next call normally once the fault is gone.

Then a few scenarios the matrix cannot express: faults on the look-ups around a create, deadlines
that cut hanging requests, Retry-After as an HTTP date, and a wait cancelled mid-poll.

The measured request counts of the matrix are printed as a table at the end of the module.
"""

from __future__ import annotations

import contextlib
import email.utils
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp.types import CallToolResult, ElicitResult

from redu_mcp.api import KINDS, DatabaseCreate, RedisCreate, RetryPolicy
from redu_mcp.sandbox import Sandbox
from redu_mcp.server import Settings, build_server
from tests.helpers import DATABASE_ARGS, FAST_RETRY, MODES, REDIS_ARGS, connect

#: The client's HTTP timeouts: a ``timeout=True`` fault costs this much per attempt.
TIMEOUT = 0.15
TARGET = "target"  # the name of the instance the get/delete/wait cases work on, and of the one created
OWNER = "usr_sandbox"

Role = Literal["read", "wait", "delete", "create"]


# --- the tools: what each one's main request is ------------------------------------------------------


@dataclass(frozen=True)
class ToolCase:
    name: str
    role: Role
    method: str
    path: str  # "{id}" stands for the target instance's id
    kind: str | None = None  # "database" or "redis" for the instance tools

    def path_for(self, id: int | None) -> str:
        return self.path.format(id=id)

    def endpoint(self, id: int | None) -> str:
        """How errors name the main request: method and path below the base URL."""
        return f"{self.method} {self.path_for(id).removeprefix('/v1')}"

    def arguments(self, id: int | None) -> dict[str, Any]:
        if self.role == "create":
            return dict(DATABASE_ARGS if self.kind == "database" else REDIS_ARGS, name=TARGET)
        if self.role == "delete":
            return {"id": id, "confirm_name": TARGET}
        if self.role == "wait":
            return {"kind": self.kind, "id": id, "poll_interval_seconds": 0.05, "timeout_seconds": 20}
        if self.path.endswith("{id}"):
            return {"id": id}
        return {}


TOOLS = [
    ToolCase("list_databases", "read", "GET", "/v1/databases", "database"),
    ToolCase("list_redis", "read", "GET", "/v1/redis", "redis"),
    ToolCase("get_database", "read", "GET", "/v1/databases/{id}", "database"),
    ToolCase("get_redis", "read", "GET", "/v1/redis/{id}", "redis"),
    ToolCase("create_database", "create", "POST", "/v1/databases", "database"),
    ToolCase("create_redis", "create", "POST", "/v1/redis", "redis"),
    ToolCase("delete_database", "delete", "DELETE", "/v1/databases/{id}", "database"),
    ToolCase("delete_redis", "delete", "DELETE", "/v1/redis/{id}", "redis"),
    ToolCase("wait_for_ready", "wait", "GET", "/v1/databases/{id}", "database"),
    ToolCase("list_flavors", "read", "GET", "/v1/flavors"),
    ToolCase("list_networks", "read", "GET", "/v1/networks"),
    ToolCase("list_keypairs", "read", "GET", "/v1/keypairs"),
    ToolCase("list_security_groups", "read", "GET", "/v1/security_groups"),
    ToolCase("whoami", "read", "GET", "/v1/me"),
]


# --- the faults, and what each role must do about them ----------------------------------------------

Outcome = Literal["ok", "error", "reconciled", "not_deleted"]


@dataclass(frozen=True)
class Expect:
    outcome: Outcome
    requests: int  # the tool's main request (method + path), as the sandbox counted it
    lookups: int | None = None  # create: GETs of the list; delete: GETs of the instance
    texts: tuple[str, ...] = ()  # in the error text (or the result's message)


def ok(requests: int, lookups: int | None = None, *texts: str) -> Expect:
    return Expect("ok", requests, lookups, texts)


def err(requests: int, lookups: int | None = None, *texts: str) -> Expect:
    return Expect("error", requests, lookups, texts)


def reconciled(requests: int, lookups: int) -> Expect:
    return Expect("reconciled", requests, lookups)


def not_deleted(requests: int, lookups: int) -> Expect:
    return Expect("not_deleted", requests, lookups, ("still exists",))


@dataclass(frozen=True)
class FaultCase:
    id: str
    fault: dict[str, Any]
    read: Expect
    wait: Expect
    delete: Expect
    create: Expect
    status: int | None = None  # the HTTP status an error must name, if any
    retry_after: bool = False  # the error must say when to retry


#: (faults × roles): ``read`` is every GET-only tool (10 of them: lists, gets, lookups, whoami) with
#: FAST_RETRY (4 attempts); ``wait`` polls (no retries: the next poll is the retry; 3 failures in a
#: row end it); ``delete`` counts DELETEs (+ GETs of the instance: the confirmation's, and a check
#: after a non-204 answer); ``create`` counts POSTs (+ GETs of the list: the name check first, then
#: any reconcile look-ups).
FAULTS = [
    FaultCase(
        "503-once", dict(status=503), read=ok(2), wait=ok(2), delete=ok(2, 1), create=ok(2, 2, "second one succeeded")
    ),
    FaultCase(
        "502-twice",
        dict(status=502, times=2),
        status=502,
        read=ok(3),
        wait=ok(3),
        delete=ok(3, 1),
        create=err(2, 3, "Nothing was created"),
    ),
    FaultCase(
        "504-always",
        dict(status=504, times=-1),
        status=504,
        read=err(4, None, "gave up after 4 attempts"),
        wait=err(3, None, "3 polls in a row failed"),
        delete=err(4, 1),
        create=err(2, 3, "Nothing was created"),
    ),
    FaultCase(
        "429-retry-after-0",
        dict(status=429, retry_after="0"),
        read=ok(2),
        wait=ok(2),
        delete=ok(2, 1),
        create=ok(2, 1, "second one succeeded"),
    ),
    FaultCase(
        "429-retry-after-120",
        dict(status=429, retry_after="120", times=-1),
        status=429,
        retry_after=True,
        read=err(1),
        wait=err(1),
        delete=err(1, 1),
        create=err(1, 1, "Nothing was created"),
    ),
    FaultCase(
        "503-retry-after-120",
        dict(status=503, retry_after="120", times=-1),
        status=503,
        retry_after=True,
        read=err(1),
        wait=err(1),
        delete=err(1, 1),
        create=err(1, 2, "checked by name"),
    ),
    FaultCase(
        "500-once",
        dict(status=500),
        status=500,
        read=err(1),
        wait=ok(2),
        delete=err(1, 1),
        create=ok(2, 2, "second one succeeded"),
    ),
    FaultCase(
        "drop-once", dict(drop=True), read=ok(2), wait=ok(2), delete=ok(2, 1), create=ok(2, 2, "second one succeeded")
    ),
    FaultCase(
        "drop-always",
        dict(drop=True, times=-1),
        read=err(4, None, "RemoteProtocolError"),
        wait=err(3),
        delete=err(4, 1),
        create=err(2, 3, "Nothing was created"),
    ),
    FaultCase(
        "timeout-once",
        dict(timeout=True),
        read=ok(2),
        wait=ok(2),
        delete=ok(2, 1),
        create=ok(2, 2, "second one succeeded"),
    ),
    FaultCase(
        "applied-then-drop",
        dict(apply=True, drop=True),
        read=ok(2),
        wait=ok(2),
        delete=ok(2, 1),
        create=reconciled(1, 2),
    ),
    FaultCase(
        "applied-then-timeout",
        dict(apply=True, timeout=True),
        read=ok(2),
        wait=ok(2),
        delete=ok(2, 1),
        create=reconciled(1, 2),
    ),
    FaultCase(
        "applied-then-502",
        dict(apply=True, status=502),
        read=ok(2),
        wait=ok(2),
        delete=ok(2, 1),
        create=reconciled(1, 2),
    ),
    FaultCase(
        "html-200",
        dict(body="html"),
        status=200,
        read=err(1, None, "HTML page"),
        wait=ok(2),
        delete=not_deleted(1, 2),
        create=ok(2, 2, "second one succeeded"),
    ),
    FaultCase(
        "applied-then-html-200",
        dict(apply=True, body="html"),
        status=200,
        read=err(1, None, "HTML page"),
        wait=ok(2),
        delete=ok(1, 2),
        create=reconciled(1, 2),
    ),
    FaultCase(
        "not-json-200",
        dict(body="not-json"),
        status=200,
        read=err(1, None, "not valid JSON"),
        wait=ok(2),
        delete=not_deleted(1, 2),
        create=ok(2, 2, "second one succeeded"),
    ),
    FaultCase(
        "wrong-shape-200",
        dict(body="wrong-shape"),
        status=200,
        read=err(1, None, "unexpected"),
        wait=ok(2),
        delete=not_deleted(1, 2),
        create=ok(2, 2, "second one succeeded"),
    ),
    FaultCase(
        "empty-200",
        dict(body="empty"),
        status=200,
        read=err(1, None, "empty body"),
        wait=ok(2),
        delete=not_deleted(1, 2),
        create=ok(2, 2, "second one succeeded"),
    ),
    FaultCase(
        "html-502-once",
        dict(body="html", status=502),
        read=ok(2),
        wait=ok(2),
        delete=ok(2, 1),
        create=ok(2, 2, "second one succeeded"),
    ),
    FaultCase(
        "not-json-503-always",
        dict(body="not-json", status=503, times=-1),
        status=503,
        read=err(4),
        wait=err(3),
        delete=err(4, 1),
        create=err(2, 3, "Nothing was created"),
    ),
    FaultCase(
        "401",
        dict(status=401),
        status=401,
        read=err(1, None, "REDU_API_KEY"),
        wait=err(1, None, "REDU_API_KEY"),
        delete=err(1, 1, "REDU_API_KEY"),
        create=err(1, 1, "REDU_API_KEY", "Nothing was created"),
    ),
    FaultCase(
        "403",
        dict(status=403),
        status=403,
        read=err(1),
        wait=err(1),
        delete=err(1, 1),
        create=err(1, 1, "Nothing was created"),
    ),
    FaultCase(
        "404",
        dict(status=404),
        status=404,
        read=err(1),
        wait=err(1, None, "does not exist"),
        delete=err(1, 1),
        create=err(1, 1),
    ),
    FaultCase(
        "409",
        dict(status=409),
        status=409,
        read=err(1),
        wait=err(1),
        delete=err(1, 1),
        create=err(1, 2, "Nothing was created"),
    ),
    FaultCase(
        "422",
        dict(status=422),
        status=422,
        read=err(1),
        wait=err(1),
        delete=err(1, 1),
        create=err(1, 1, "Nothing was created"),
    ),
    FaultCase("slow-but-in-time", dict(delay=0.02), read=ok(1), wait=ok(1), delete=ok(1, 1), create=ok(1, 1)),
]


# --- fixtures and helpers ---------------------------------------------------------------------------

#: (fault id, role) -> {tool: (main requests, look-ups)}, for the table printed at the end.
MEASURED: dict[tuple[str, Role], dict[str, tuple[int, int | None]]] = defaultdict(dict)


@pytest.fixture
def sandbox() -> Sandbox:
    """Instances are ready at once, so a wait's poll count depends on the faults alone."""
    return Sandbox(provisioning_seconds=0)


@pytest.fixture(scope="module")
def shared_upstream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sandbox, Any]:
    """One sandbox and one server for the whole matrix (building a server costs ~30 ms; 364 cases)."""
    sandbox = Sandbox(provisioning_seconds=0)
    credentials_dir = tmp_path_factory.mktemp("credentials")
    settings = Settings(sandbox=True, credentials_dir=credentials_dir, default_poll_interval=0.05)
    return sandbox, build_server(settings, client=sandbox.client(retry=FAST_RETRY, timeout=TIMEOUT))


@pytest.fixture
def upstream(shared_upstream: tuple[Sandbox, Any]) -> tuple[Sandbox, Any]:
    """The shared sandbox, emptied: no instances, no faults, no requests counted yet."""
    sandbox, server = shared_upstream
    sandbox.faults.clear()
    sandbox.requests.clear()
    sandbox.store.records.clear()
    return sandbox, server


@pytest.fixture
def server_on(sandbox: Sandbox, make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """A server on the sandbox with FAST_RETRY and short HTTP timeouts (``timeout=None``: none at all)."""

    def make(timeout: float | None = TIMEOUT, retry_policy: RetryPolicy = FAST_RETRY, **settings: Any) -> Any:
        return build_server(make_settings(**settings), client=sandbox.client(retry=retry_policy, timeout=timeout))

    return make


async def make_instance(sandbox: Sandbox, kind: str, name: str = TARGET) -> int:
    """An instance made straight on the sandbox; the request log is cleared so counts start at zero."""
    body = DatabaseCreate(name=name, **DATABASE_ARGS) if kind == "database" else RedisCreate(name=name, **REDIS_ARGS)
    async with sandbox.client(retry=FAST_RETRY) as redu:
        created = await redu.create_instance(KINDS[kind], body)
    sandbox.requests.clear()
    return created.id


def instances_named(sandbox: Sandbox, kind: str, name: str = TARGET) -> int:
    return sum(1 for r in sandbox.store.owned(KINDS[kind], OWNER) if r.public["name"] == name)


def text_of(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def assert_clear_error(result: CallToolResult, tool: str, *, endpoint: str, status: int | None) -> str:
    """An error result a model can act on: what failed (endpoint, status), and what to do next."""
    text = text_of(result)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    assert result.structured_content is None
    assert text.strip() != f"Error executing tool {tool}", "an error with no detail (a crash)"
    assert "Traceback" not in text and 'File "' not in text
    assert endpoint in text, (endpoint, text)
    if status is not None:
        assert f"HTTP {status}" in text, (status, text)
    assert "Next step" in text, text
    return text


@pytest.fixture(scope="module", autouse=True)
def request_count_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the measured request counts of the matrix, one row per fault, one column per role."""
    yield
    if not MEASURED:
        return
    roles: list[tuple[Role, str]] = [
        ("read", "10 read tools: GETs"),
        ("wait", "wait_for_ready: polls"),
        ("delete", "delete_*: DELETE (+GET)"),
        ("create", "create_*: POST (+GET list)"),
    ]

    def cell(fault_id: str, role: Role) -> str:
        seen = set(MEASURED.get((fault_id, role), {}).values())
        if not seen:
            return "-"
        return " / ".join(f"{n}" if look is None else f"{n} (+{look})" for n, look in sorted(seen, key=str))

    width = max(len(f.id) for f in FAULTS)
    lines = [
        f"Fault matrix: {len(FAULTS)} faults x {len(TOOLS)} tools = {len(FAULTS) * len(TOOLS)} cases; "
        f"upstream requests per call (FAST_RETRY: {FAST_RETRY.attempts} attempts)",
        f"{'fault':<{width}} | " + " | ".join(f"{title:<26}" for _, title in roles),
    ]
    lines.append("-" * len(lines[-1]))
    for fault in FAULTS:
        lines.append(f"{fault.id:<{width}} | " + " | ".join(f"{cell(fault.id, role):<26}" for role, _ in roles))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print("\n\n" + "\n".join(lines))


# --- the matrix ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
@pytest.mark.parametrize("case", FAULTS, ids=[f.id for f in FAULTS])
async def test_fault_matrix(case: FaultCase, tool: ToolCase, upstream: tuple[Sandbox, Any]) -> None:
    sandbox, server = upstream
    expect: Expect = getattr(case, tool.role)
    id = await make_instance(sandbox, tool.kind) if "{id}" in tool.path else None
    path = tool.path_for(id)
    sandbox.faults.add(method=tool.method, path=path, **case.fault)

    async with connect(server) as client:
        result = await client.call_tool(tool.name, tool.arguments(id))

        requests = sandbox.count(tool.method, path)
        lookup_path = f"/v1/{KINDS[tool.kind].collection}" if tool.role == "create" else path
        lookups = sandbox.count("GET", lookup_path) if tool.role in ("create", "delete") else None
        MEASURED[(case.id, tool.role)][tool.name] = (requests, lookups)

        # No retry storm, no duplicate POST: exactly the requests the policy allows.
        assert requests == expect.requests, text_of(result)
        if expect.lookups is not None:
            assert lookups == expect.lookups, text_of(result)
        if tool.role != "create":
            assert sandbox.count("POST") == 0

        text = text_of(result)
        if expect.outcome == "error":
            text = assert_clear_error(result, tool.name, endpoint=tool.endpoint(id), status=case.status)
            if case.retry_after:
                assert "120 s" in text and "Try again in 120 s" in text, text
        else:
            assert not result.is_error, text
            assert isinstance(result.structured_content, dict)
        for expected in expect.texts:
            assert expected in text, (expected, text)

        data = result.structured_content or {}
        if tool.role == "create":
            # At most one instance per call, whatever happened on the way.
            assert instances_named(sandbox, tool.kind) == (0 if expect.outcome == "error" else 1)
            if expect.outcome == "ok":
                assert data["created"] is True and data["password_delivery"] == "file"
                assert Path(data["credentials_file"]).is_file()
            elif expect.outcome == "reconciled":
                assert data["created"] is True and data["password_delivery"] == "not_returned"
                assert data["password"] is None and data["credentials_file"] is None
                assert "password is unknown" in data["message"]
                assert f"delete_{tool.kind}" in data["next_step"] and "pass" in data["next_step"]
        elif tool.role == "delete":
            gone = instances_named(sandbox, tool.kind) == 0
            assert gone is (expect.outcome == "ok")
            if expect.outcome in ("ok", "not_deleted"):
                assert data["deleted"] is (expect.outcome == "ok")
        elif tool.role == "wait" and expect.outcome == "ok":
            assert data["ready"] is True and data["polls"] == expect.requests

        # The fault is gone: the server answers the next call normally.
        sandbox.faults.clear()
        if tool.role == "create":
            again = await client.call_tool(tool.name, tool.arguments(id))
            assert not again.is_error, text_of(again)
            assert again.structured_content["created"] is (expect.outcome == "error")  # exists: reported
            assert instances_named(sandbox, tool.kind) == 1  # never duplicated
        elif tool.role == "delete" and expect.outcome == "ok":
            listed = await client.call_tool(f"list_{KINDS[tool.kind].collection}", {})
            assert not listed.is_error and listed.structured_content["count"] == 0
        else:
            again = await client.call_tool(tool.name, tool.arguments(id))
            assert not again.is_error, text_of(again)
            if tool.role == "delete":
                assert again.structured_content["deleted"] is True


def test_the_matrix_covers_every_tool() -> None:
    from redu_mcp.server import TOOLS as TOOL_SPECS

    assert {t.name for t in TOOLS} == {spec.name for spec in TOOL_SPECS} and len(TOOLS) == 14
    assert len({f.id for f in FAULTS}) == len(FAULTS)


# --- creates: faults on the look-ups around the POST --------------------------------------------------


async def test_create_refuses_when_the_name_check_fails(sandbox: Sandbox, server_on: Callable[..., Any]) -> None:
    sandbox.faults.add(method="GET", path="/v1/databases", status=503, times=-1)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_database", dict(DATABASE_ARGS, name=TARGET))
    text = assert_clear_error(result, "create_database", endpoint="GET /databases", status=503)
    assert "Nothing was created" in text
    assert sandbox.count("POST") == 0  # never POST without knowing the name is free
    assert sandbox.count("GET", "/v1/databases") == FAST_RETRY.attempts


async def test_create_retries_the_name_check_then_posts_once(sandbox: Sandbox, server_on: Callable[..., Any]) -> None:
    sandbox.faults.add(method="GET", path="/v1/redis", drop=True)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_redis", dict(REDIS_ARGS, name=TARGET))
    assert not result.is_error and result.structured_content["created"] is True
    assert (sandbox.count("GET", "/v1/redis"), sandbox.count("POST", "/v1/redis")) == (2, 1)


@pytest.mark.parametrize("mode", MODES)
async def test_create_whose_outcome_cannot_be_known_sends_nothing_more(
    sandbox: Sandbox, server_on: Callable[..., Any], mode: str
) -> None:
    """The POST was applied but its answer lost, and the look-up by name fails too: no second POST."""
    sandbox.faults.add(method="POST", path="/v1/databases", apply=True, drop=True)
    sandbox.faults.add(method="GET", path="/v1/databases", status=503, times=-1, after=1)  # the name check passes
    async with connect(server_on(), mode) as client:
        result = await client.call_tool("create_database", dict(DATABASE_ARGS, name=TARGET))
        text = text_of(result)
        assert result.is_error and "Traceback" not in text
        assert "Could not tell whether PostgreSQL database 'target' was created" in text
        assert "POST /databases" in text and "GET /databases: HTTP 503" in text
        assert "do not simply call create_database again" in text and "list_databases" in text
        assert sandbox.count("POST") == 1
        assert sandbox.count("GET", "/v1/databases") == 1 + FAST_RETRY.attempts
        assert instances_named(sandbox, "database") == 1  # it did happen upstream

        sandbox.faults.clear()  # the model follows the advice: the API answers again
        again = await client.call_tool("create_database", dict(DATABASE_ARGS, name=TARGET))
        assert again.structured_content["created"] is False  # found, not duplicated
    assert sandbox.count("POST") == 1 and instances_named(sandbox, "database") == 1


async def test_create_not_applied_then_the_retry_applied_but_lost(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    sandbox.faults.add(method="POST", path="/v1/redis", status=502)  # not applied: the look-up finds nothing
    sandbox.faults.add(method="POST", path="/v1/redis", apply=True, timeout=True)  # the retry: applied, lost
    async with connect(server_on()) as client:
        result = await client.call_tool("create_redis", dict(REDIS_ARGS, name=TARGET))
    assert not result.is_error, text_of(result)
    assert result.structured_content["password_delivery"] == "not_returned"
    assert "password is unknown" in result.structured_content["message"]
    assert sandbox.count("POST", "/v1/redis") == 2  # the one safe retry, never a third
    assert sandbox.count("GET", "/v1/redis") == 3  # name check, reconcile, final look-up
    assert instances_named(sandbox, "redis") == 1


async def test_create_409_on_the_retry_means_the_first_attempt_landed_late(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    """Uncertain, not found by name, retried: a 409 now means the first POST was applied after all."""
    sandbox.faults.add(method="POST", path="/v1/databases", status=504)  # not listed yet when looked up
    sandbox.faults.add(method="POST", path="/v1/databases", status=409, apply=True)  # "it exists now"
    async with connect(server_on()) as client:
        result = await client.call_tool("create_database", dict(DATABASE_ARGS, name=TARGET))
    data = result.structured_content
    assert not result.is_error, text_of(result)
    assert data["created"] is True and data["password_delivery"] == "not_returned"
    assert "HTTP 409" in data["message"] and "password is unknown" in data["message"]
    assert sandbox.count("POST") == 2 and sandbox.count("GET", "/v1/databases") == 3
    assert instances_named(sandbox, "database") == 1


async def test_create_second_attempt_uncertain_and_final_look_up_fails(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    sandbox.faults.add(method="POST", path="/v1/redis", status=502, times=2)
    sandbox.faults.add(method="GET", path="/v1/redis", status=503, times=-1, after=2)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_redis", dict(REDIS_ARGS, name=TARGET))
    text = text_of(result)
    assert result.is_error and "Could not tell whether Redis instance 'target' was created" in text
    assert text.count("POST /redis: HTTP 502") == 2  # both attempts are named
    assert sandbox.count("POST") == 2


async def test_create_with_a_supplied_password_recovers_completely(
    sandbox: Sandbox, server_on: Callable[..., Any], credentials_dir: Path
) -> None:
    """Found after a lost answer, but the caller chose the password: it is known and saved as usual."""
    secret = "my-own-Secret-99"
    sandbox.faults.add(method="POST", path="/v1/databases", apply=True, drop=True)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_database", dict(DATABASE_ARGS, name=TARGET, db_password=secret))
    data = result.structured_content
    assert not result.is_error and data["created"] is True
    assert data["password_delivery"] == "caller_supplied" and data["password"] is None
    assert "was created" in data["message"] and secret not in text_of(result)
    assert f"PGPASSWORD={secret}" in Path(data["credentials_file"]).read_text().replace("'", "")
    assert sandbox.count("POST") == 1 and instances_named(sandbox, "database") == 1


async def test_create_409_because_another_request_took_the_name(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    sandbox.faults.add(method="POST", path="/v1/databases", status=409, apply=True)  # created "by someone else"
    async with connect(server_on()) as client:
        result = await client.call_tool("create_database", dict(DATABASE_ARGS, name=TARGET))
    data = result.structured_content
    assert not result.is_error and data["created"] is False and data["password_delivery"] == "unknown"
    assert "Another request created it" in data["message"]
    assert sandbox.count("POST") == 1 and instances_named(sandbox, "database") == 1


async def test_create_rate_limited_twice_creates_nothing(sandbox: Sandbox, server_on: Callable[..., Any]) -> None:
    sandbox.faults.add(method="POST", path="/v1/redis", status=429, retry_after="0", times=2)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_redis", dict(REDIS_ARGS, name=TARGET))
    text = assert_clear_error(result, "create_redis", endpoint="POST /redis", status=429)
    assert "It was tried twice" in text and "Nothing was created" in text
    assert sandbox.count("POST") == 2 and sandbox.count("GET", "/v1/redis") == 1  # 429: no look-up needed
    assert instances_named(sandbox, "redis") == 0


# --- deadlines -----------------------------------------------------------------------------------------


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> float:
    """Tools get 1 s instead of 45 s, so a hang is cut quickly."""
    monkeypatch.setattr("redu_mcp.server.specs.TOOL_DEADLINE_SECONDS", 1.0)
    return 1.0


async def test_a_hanging_get_is_cut_at_the_tool_deadline(
    sandbox: Sandbox, server_on: Callable[..., Any], short_deadline: float
) -> None:
    sandbox.faults.add(method="GET", path="/v1/flavors", timeout=True, times=-1)
    async with connect(server_on(timeout=None)) as client:  # no HTTP timeout: only the deadline can end it
        with anyio.fail_after(10):  # a hang is the failure this guards against
            result = await client.call_tool("list_flavors", {})
        text = assert_clear_error(result, "list_flavors", endpoint="GET /flavors", status=None)
        assert "this call had left" in text
        assert sandbox.count("GET", "/v1/flavors") == 1  # no retry once the time is spent
        sandbox.faults.clear()
        assert not (await client.call_tool("list_flavors", {})).is_error


async def test_a_hanging_create_still_ends_reconciled_within_the_deadline(
    sandbox: Sandbox, server_on: Callable[..., Any], short_deadline: float
) -> None:
    """The POST may take only half the time left, so the look-up that settles it always gets its turn."""
    sandbox.faults.add(method="POST", path="/v1/databases", apply=True, timeout=True)
    async with connect(server_on(timeout=None)) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("create_database", dict(DATABASE_ARGS, name=TARGET))
    assert not result.is_error, text_of(result)
    assert result.structured_content["password_delivery"] == "not_returned"
    assert "this call had left" in result.structured_content["message"]
    assert sandbox.count("POST") == 1 and instances_named(sandbox, "database") == 1


async def test_retry_after_as_an_http_date_is_honoured(sandbox: Sandbox, server_on: Callable[..., Any]) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    sandbox.faults.add(method="GET", path="/v1/me", status=503, retry_after=when)
    async with connect(server_on()) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error and sandbox.count("GET", "/v1/me") == 2  # waited (capped), then retried


async def test_retry_after_as_a_date_beyond_the_deadline_fails_fast(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    sandbox.faults.add(method="GET", path="/v1/me", status=429, retry_after=when, times=-1)
    async with connect(server_on()) as client:
        result = await client.call_tool("whoami", {})
    text = assert_clear_error(result, "whoami", endpoint="GET /me", status=429)
    assert "Try again in 3" in text and "UTC" in text  # ~3600 s, and the clock time
    assert sandbox.count("GET", "/v1/me") == 1


# --- wait_for_ready under faults ----------------------------------------------------------------------


async def test_wait_reports_transient_failures_as_progress_and_keeps_polling(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    id = await make_instance(sandbox, "redis")
    path = f"/v1/redis/{id}"
    sandbox.faults.add(method="GET", path=path, status=503)
    sandbox.faults.add(method="GET", path=path, drop=True)
    messages: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with connect(server_on()) as client:
        result = await client.call_tool(
            "wait_for_ready", {"kind": "redis", "id": id, "poll_interval_seconds": 0.05}, progress_callback=progress
        )
    assert not result.is_error and result.structured_content["ready"] is True
    assert len(messages) == 3 == sandbox.count("GET", path)
    assert "poll 1 failed" in messages[0] and "HTTP 503" in messages[0] and "polling again" in messages[0]
    assert "poll 2 failed" in messages[1] and "RemoteProtocolError" in messages[1]
    assert "status: ready" in messages[2]


async def test_a_hanging_poll_is_cut_at_the_wait_deadline(sandbox: Sandbox, server_on: Callable[..., Any]) -> None:
    id = await make_instance(sandbox, "database")
    path = f"/v1/databases/{id}"
    sandbox.faults.add(method="GET", path=path, timeout=True, times=-1)
    async with connect(server_on(timeout=None)) as client:  # no HTTP timeout: only the deadline can end it
        with anyio.fail_after(10):
            result = await client.call_tool("wait_for_ready", {"kind": "database", "id": id, "timeout_seconds": 0.5})
        text = text_of(result)
        assert result.is_error and f"No answer about PostgreSQL database {id} within 0.5s" in text
        assert "last poll" in text and f"GET /databases/{id}" in text and "call wait_for_ready again" in text
        assert sandbox.count("GET", path) == 1
        sandbox.faults.clear()
        assert (await client.call_tool("wait_for_ready", {"kind": "database", "id": id})).structured_content["ready"]


@pytest.mark.parametrize("mode", MODES)
async def test_cancelling_a_wait_mid_poll_stops_upstream_requests(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    slow = Sandbox(provisioning_seconds=600)  # it stays "provisioning": the wait would poll on and on
    id = await make_instance(slow, "redis")
    path = f"/v1/redis/{id}"
    slow.faults.add(method="GET", path=path, delay=0.05, times=-1)  # every poll is slow, so one is in flight
    server = build_server(make_settings(), client=slow.client(retry=FAST_RETRY, timeout=TIMEOUT))
    async with connect(server, mode) as client:
        with anyio.move_on_after(0.35) as scope:
            await client.call_tool(
                "wait_for_ready", {"kind": "redis", "id": id, "poll_interval_seconds": 0.05, "timeout_seconds": 60}
            )
        assert scope.cancelled_caught
        await anyio.sleep(0.1)  # let the cancellation reach the server
        polled = slow.count("GET", path)
        assert polled >= 2  # it was polling
        await anyio.sleep(0.3)  # three poll cycles
        assert slow.count("GET", path) == polled  # and stopped with the cancel
        slow.faults.clear()
        result = await client.call_tool("get_redis", {"id": id})
        assert not result.is_error and result.structured_content["status"] == "provisioning"  # server unharmed


# --- deletes: faults around the DELETE ----------------------------------------------------------------


async def test_delete_refuses_when_the_confirmation_lookup_fails(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    id = await make_instance(sandbox, "database")
    sandbox.faults.add(method="GET", path=f"/v1/databases/{id}", status=502, times=-1)
    async with connect(server_on()) as client:
        result = await client.call_tool("delete_database", {"id": id, "confirm_name": TARGET})
    assert_clear_error(result, "delete_database", endpoint=f"GET /databases/{id}", status=502)
    assert sandbox.count("DELETE") == 0 and instances_named(sandbox, "database") == 1


async def test_delete_with_an_odd_answer_and_a_failing_check_says_it_is_unclear(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    id = await make_instance(sandbox, "redis")
    sandbox.faults.add(method="DELETE", path=f"/v1/redis/{id}", body="html")  # 200 and a proxy's page
    sandbox.faults.add(method="GET", path=f"/v1/redis/{id}", status=503, times=-1, after=1)  # the check fails
    async with connect(server_on()) as client:
        result = await client.call_tool("delete_redis", {"id": id, "confirm_name": TARGET})
    text = text_of(result)
    assert result.is_error and "Could not tell whether Redis instance 'target'" in text
    assert "HTTP 200 instead of the documented 204" in text and f"get_redis with id {id}" in text
    assert sandbox.count("DELETE") == 1  # an answer came: not re-sent


@pytest.mark.parametrize("mode", MODES)
async def test_the_time_a_user_takes_to_confirm_a_delete_is_not_held_against_it(
    sandbox: Sandbox, server_on: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """In the handshake era the confirmation is asked mid-call: the DELETE gets a fresh budget after it."""
    monkeypatch.setattr("redu_mcp.server.specs.TOOL_DEADLINE_SECONDS", 0.3)
    id = await make_instance(sandbox, "database")

    async def slow_user(context: Any, params: Any) -> ElicitResult:
        await anyio.sleep(0.5)  # longer than the whole tool deadline
        return ElicitResult(action="accept", content={"confirm": True})

    async with connect(server_on(), mode, elicitation_callback=slow_user) as client:
        result = await client.call_tool("delete_database", {"id": id})
    assert not result.is_error, text_of(result)
    assert result.structured_content["deleted"] is True
    assert sandbox.count("DELETE") == 1 and instances_named(sandbox, "database") == 0
