"""A flaky upstream, tool by tool: every injected fault × every one of the 14 tools, through a real MCP client.

Each case drives the server in-process (``mcp.Client``) against the sandbox with one fault injected on
the tool's main request (the POST of a create, the DELETE of a delete, the GET of everything else).
There is one test per role (read, wait, delete, create); each fault names what every role must do
about it, in named expectations (``Create(posts=2, list_gets=3, outcome="error", says="Nothing was
created")``), and every case checks three things:

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
import functools
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp.types import CallToolResult, ElicitResult

from redu_mcp.api import KINDS, RetryPolicy
from redu_mcp.sandbox import Sandbox
from redu_mcp.server import TOOLS as TOOL_SPECS
from redu_mcp.server import Settings, build_server
from tests.helpers import CREATE_ARGS, FAST_RETRY, MODES, connect, seed_instance, stays_still, until

#: The client's HTTP timeouts: a ``timeout=True`` fault costs this much per attempt.
TIMEOUT = 0.15
TARGET = "target"  # the name of the instance the get/delete/wait cases work on, and of the one created
OWNER = "usr_sandbox"


# --- the tools, by role: what each one's main request is ----------------------------------------------


@dataclass(frozen=True)
class ToolCase:
    name: str
    method: str
    path: str  # "{id}" stands for the target instance's id
    kind: Literal["database", "redis"] = "database"  # of the instance it works on (the wait: a database)

    def path_for(self, id: int | None) -> str:
        return self.path.format(id=id)

    @property
    def needs_instance(self) -> bool:
        return "{id}" in self.path


READ_TOOLS = [
    ToolCase("list_databases", "GET", "/v1/databases"),
    ToolCase("list_redis", "GET", "/v1/redis", "redis"),
    ToolCase("get_database", "GET", "/v1/databases/{id}"),
    ToolCase("get_redis", "GET", "/v1/redis/{id}", "redis"),
    ToolCase("list_create_options", "GET", "/v1/flavors"),  # and three more look-ups, concurrently
    ToolCase("whoami", "GET", "/v1/me"),
]
WAIT_TOOL = ToolCase("wait_for_ready", "GET", "/v1/databases/{id}")
DELETE_TOOLS = [ToolCase("delete_database", "DELETE", "/v1/databases/{id}"), ToolCase("delete_redis", "DELETE", "/v1/redis/{id}", "redis")]  # fmt: skip
CREATE_TOOLS = [ToolCase("create_database", "POST", "/v1/databases"), ToolCase("create_redis", "POST", "/v1/redis", "redis")]  # fmt: skip
ALL_TOOLS = [*READ_TOOLS, WAIT_TOOL, *DELETE_TOOLS, *CREATE_TOOLS]


# --- what each role must do about a fault ---------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A read tool (list, get, look-up, whoami) with FAST_RETRY (4 attempts)."""

    gets: int
    fails: bool = False
    says: str = ""


@dataclass(frozen=True)
class Wait:
    """wait_for_ready: no retries (the next poll is the retry); 3 failures in a row end it."""

    polls: int
    fails: bool = False
    says: str = ""


@dataclass(frozen=True)
class Delete:
    """delete_*: DELETEs sent, and GETs of the instance (the confirmation's, and a check after a non-204)."""

    deletes: int
    gets: int
    outcome: Literal["deleted", "not_deleted", "error"]
    says: str = ""


@dataclass(frozen=True)
class Create:
    """create_*: POSTs sent, and GETs of the list (the name check first, then any reconcile look-ups)."""

    posts: int
    list_gets: int
    outcome: Literal["created", "reconciled", "error"]
    says: str = ""


@dataclass(frozen=True)
class FaultCase:
    id: str
    fault: dict[str, Any]
    read: Read
    wait: Wait
    delete: Delete
    create: Create
    status: int | None = None  # the HTTP status an error must name, if any
    retry_after: bool = False  # an error must say when to retry


RETRIED = "second one succeeded"
NOTHING = "Nothing was created"

FAULTS = [
    FaultCase(
        "503-once",
        dict(status=503),
        read=Read(gets=2),
        wait=Wait(polls=2),
        delete=Delete(deletes=2, gets=1, outcome="deleted"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "502-twice",
        dict(status=502, times=2),
        status=502,
        read=Read(gets=3),
        wait=Wait(polls=3),
        delete=Delete(deletes=3, gets=1, outcome="deleted"),
        create=Create(posts=2, list_gets=3, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "504-always",
        dict(status=504, times=-1),
        status=504,
        read=Read(gets=4, fails=True, says="gave up after 4 attempts"),
        wait=Wait(polls=3, fails=True, says="3 polls in a row failed"),
        delete=Delete(deletes=4, gets=1, outcome="error"),
        create=Create(posts=2, list_gets=3, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "429-retry-after-0",
        dict(status=429, retry_after="0"),
        read=Read(gets=2),
        wait=Wait(polls=2),
        delete=Delete(deletes=2, gets=1, outcome="deleted"),
        create=Create(posts=2, list_gets=1, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "429-retry-after-120",
        dict(status=429, retry_after="120", times=-1),
        status=429,
        retry_after=True,
        read=Read(gets=1, fails=True),
        wait=Wait(polls=1, fails=True),
        delete=Delete(deletes=1, gets=1, outcome="error"),
        create=Create(posts=1, list_gets=1, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "503-retry-after-120",
        dict(status=503, retry_after="120", times=-1),
        status=503,
        retry_after=True,
        read=Read(gets=1, fails=True),
        wait=Wait(polls=1, fails=True),
        delete=Delete(deletes=1, gets=1, outcome="error"),
        create=Create(posts=1, list_gets=2, outcome="error", says="checked by name"),
    ),
    FaultCase(
        "500-once",
        dict(status=500),
        status=500,
        read=Read(gets=1, fails=True),
        wait=Wait(polls=2),
        delete=Delete(deletes=1, gets=1, outcome="error"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "drop-once",
        dict(drop=True),
        read=Read(gets=2),
        wait=Wait(polls=2),
        delete=Delete(deletes=2, gets=1, outcome="deleted"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "drop-always",
        dict(drop=True, times=-1),
        read=Read(gets=4, fails=True, says="RemoteProtocolError"),
        wait=Wait(polls=3, fails=True),
        delete=Delete(deletes=4, gets=1, outcome="error"),
        create=Create(posts=2, list_gets=3, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "timeout-once",
        dict(timeout=True),
        read=Read(gets=2),
        wait=Wait(polls=2),
        delete=Delete(deletes=2, gets=1, outcome="deleted"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "applied-then-drop",
        dict(apply=True, drop=True),
        read=Read(gets=2),
        wait=Wait(polls=2),
        delete=Delete(deletes=2, gets=1, outcome="deleted"),
        create=Create(posts=1, list_gets=2, outcome="reconciled"),
    ),
    FaultCase(
        "applied-then-timeout",
        dict(apply=True, timeout=True),
        read=Read(gets=2),
        wait=Wait(polls=2),
        delete=Delete(deletes=2, gets=1, outcome="deleted"),
        create=Create(posts=1, list_gets=2, outcome="reconciled"),
    ),
    FaultCase(
        "applied-then-502",
        dict(apply=True, status=502),
        read=Read(gets=2),
        wait=Wait(polls=2),
        delete=Delete(deletes=2, gets=1, outcome="deleted"),
        create=Create(posts=1, list_gets=2, outcome="reconciled"),
    ),
    FaultCase(
        "html-200",
        dict(body="html"),
        status=200,
        read=Read(gets=1, fails=True, says="HTML page"),
        wait=Wait(polls=2),
        delete=Delete(deletes=1, gets=2, outcome="not_deleted", says="still exists"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "applied-then-html-200",
        dict(apply=True, body="html"),
        status=200,
        read=Read(gets=1, fails=True, says="HTML page"),
        wait=Wait(polls=2),
        delete=Delete(deletes=1, gets=2, outcome="deleted"),
        create=Create(posts=1, list_gets=2, outcome="reconciled"),
    ),
    FaultCase(
        "not-json-200",
        dict(body="not-json"),
        status=200,
        read=Read(gets=1, fails=True, says="not valid JSON"),
        wait=Wait(polls=2),
        delete=Delete(deletes=1, gets=2, outcome="not_deleted", says="still exists"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "wrong-shape-200",
        dict(body="wrong-shape"),
        status=200,
        read=Read(gets=1, fails=True, says="could not be read"),
        wait=Wait(polls=2),
        delete=Delete(deletes=1, gets=2, outcome="not_deleted", says="still exists"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "empty-200",
        dict(body="empty"),
        status=200,
        read=Read(gets=1, fails=True, says="empty body"),
        wait=Wait(polls=2),
        delete=Delete(deletes=1, gets=2, outcome="not_deleted", says="still exists"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "html-502-once",
        dict(body="html", status=502),
        read=Read(gets=2),
        wait=Wait(polls=2),
        delete=Delete(deletes=2, gets=1, outcome="deleted"),
        create=Create(posts=2, list_gets=2, outcome="created", says=RETRIED),
    ),
    FaultCase(
        "not-json-503-always",
        dict(body="not-json", status=503, times=-1),
        status=503,
        read=Read(gets=4, fails=True),
        wait=Wait(polls=3, fails=True),
        delete=Delete(deletes=4, gets=1, outcome="error"),
        create=Create(posts=2, list_gets=3, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "401",
        dict(status=401),
        status=401,
        read=Read(gets=1, fails=True, says="REDU_API_KEY"),
        wait=Wait(polls=1, fails=True, says="REDU_API_KEY"),
        delete=Delete(deletes=1, gets=1, outcome="error", says="REDU_API_KEY"),
        create=Create(posts=1, list_gets=1, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "403",
        dict(status=403),
        status=403,
        read=Read(gets=1, fails=True),
        wait=Wait(polls=1, fails=True),
        delete=Delete(deletes=1, gets=1, outcome="error"),
        create=Create(posts=1, list_gets=1, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "404",
        dict(status=404),
        status=404,
        read=Read(gets=1, fails=True),
        wait=Wait(polls=1, fails=True, says="There is no PostgreSQL database with id"),
        delete=Delete(deletes=1, gets=1, outcome="error"),
        create=Create(posts=1, list_gets=1, outcome="error"),
    ),
    FaultCase(
        "409",
        dict(status=409),
        status=409,
        read=Read(gets=1, fails=True),
        wait=Wait(polls=1, fails=True),
        delete=Delete(deletes=1, gets=1, outcome="error"),
        create=Create(posts=1, list_gets=2, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "422",
        dict(status=422),
        status=422,
        read=Read(gets=1, fails=True),
        wait=Wait(polls=1, fails=True),
        delete=Delete(deletes=1, gets=1, outcome="error"),
        create=Create(posts=1, list_gets=1, outcome="error", says=NOTHING),
    ),
    FaultCase(
        "slow-but-in-time",
        dict(delay=0.02),
        read=Read(gets=1),
        wait=Wait(polls=1),
        delete=Delete(deletes=1, gets=1, outcome="deleted"),
        create=Create(posts=1, list_gets=1, outcome="created"),
    ),
]
FAULT_IDS = [f.id for f in FAULTS]

#: (role, fault id) -> the (main requests, look-ups) seen, for the table printed at the end.
MEASURED: dict[tuple[str, str], set[tuple[int, int | None]]] = defaultdict(set)


# --- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Sandbox:
    """Instances are ready at once, so a wait's poll count depends on the faults alone."""
    return Sandbox(provisioning_seconds=0)


@pytest.fixture(scope="module")
def shared_upstream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sandbox, Any]:
    """One sandbox and one server for the whole matrix (building a server costs ~30 ms; 364 cases)."""
    sandbox = Sandbox(provisioning_seconds=0)
    credentials_dir = tmp_path_factory.mktemp("credentials")
    settings = Settings(sandbox=True, credentials_dir=credentials_dir, poll_interval_seconds=0.05)
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
    """The target instance, made straight on the sandbox; the request log is cleared so counts start at zero."""
    id = await seed_instance(sandbox, kind, name)
    sandbox.requests.clear()
    return id


def instances_named(sandbox: Sandbox, kind: str, name: str = TARGET) -> int:
    return sum(1 for r in sandbox.store.owned(KINDS[kind], OWNER) if r.public["name"] == name)


def text_of(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def assert_clear_error(result: CallToolResult, tool: str, *, status: int | None) -> str:
    """An error result a model can act on: what failed (the status as a fact), and the next call by
    tool name, never an HTTP path."""
    text = text_of(result)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    assert result.structured_content is None
    assert text.strip() != f"Error executing tool {tool}", "an error with no detail (a crash)"
    assert "Traceback" not in text and 'File "' not in text
    assert not re.search(r"\b(GET|POST|DELETE) /|/v1/", text), ("an HTTP path", text)
    if status is not None:
        assert f"HTTP {status}" in text, (status, text)
    assert "Next step" in text, text
    return text


def assert_outcome(
    result: CallToolResult, tool: ToolCase, id: int | None, case: FaultCase, fails: bool, says: str
) -> None:
    """Fails with a clear error (and says when to retry, if the API said), or succeeds; and says ``says``."""
    if fails:
        text = assert_clear_error(result, tool.name, status=case.status)
        if case.retry_after:
            assert "again in 120 s" in text, text
    else:
        assert not result.is_error, text_of(result)
        assert isinstance(result.structured_content, dict)
    assert says in text_of(result), (says, text_of(result))


async def call_once_faulted(
    upstream: tuple[Sandbox, Any], tool: ToolCase, case: FaultCase, arguments: Callable[[int | None], dict[str, Any]]
) -> tuple[Sandbox, Any, int | None, CallToolResult]:
    """Make the target (if the tool needs one), inject the fault on the tool's main request, call once."""
    sandbox, server = upstream
    id = await make_instance(sandbox, tool.kind) if tool.needs_instance else None
    sandbox.faults.add(method=tool.method, path=tool.path_for(id), **case.fault)
    async with connect(server) as client:
        result = await client.call_tool(tool.name, arguments(id))
    sandbox.faults.clear()
    return sandbox, server, id, result


async def next_call_works(server: Any, tool: ToolCase, arguments: dict[str, Any]) -> CallToolResult:
    """The fault is gone: the server answers the next call normally."""
    async with connect(server) as client:
        again = await client.call_tool(tool.name, arguments)
    assert not again.is_error, text_of(again)
    return again


@pytest.fixture(scope="module", autouse=True)
def request_count_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the measured request counts of the matrix, one row per fault, one column per role."""
    yield
    if not MEASURED:
        return
    roles = {
        "read": "9 read tools: GETs",
        "wait": "wait_for_ready: polls",
        "delete": "delete_*: DELETE (+GET)",
        "create": "create_*: POST (+GET list)",
    }

    def cell(role: str, fault_id: str) -> str:
        seen = MEASURED.get((role, fault_id), set())
        return " / ".join(f"{n}" if look is None else f"{n} (+{look})" for n, look in sorted(seen, key=str)) or "-"

    width = max(len(f.id) for f in FAULTS)
    lines = [
        f"Fault matrix: {len(FAULTS)} faults x {len(ALL_TOOLS)} tools = {len(FAULTS) * len(ALL_TOOLS)} cases; "
        f"upstream requests per call (FAST_RETRY: {FAST_RETRY.attempts} attempts)",
        f"{'fault':<{width}} | " + " | ".join(f"{title:<26}" for title in roles.values()),
    ]
    lines.append("-" * len(lines[-1]))
    for fault in FAULTS:
        lines.append(f"{fault.id:<{width}} | " + " | ".join(f"{cell(role, fault.id):<26}" for role in roles))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print("\n\n" + "\n".join(lines))


# --- the matrix: one test per role --------------------------------------------------------------------


@pytest.mark.parametrize("tool", READ_TOOLS, ids=[t.name for t in READ_TOOLS])
@pytest.mark.parametrize("case", FAULTS, ids=FAULT_IDS)
async def test_a_read_tool_under_a_fault(case: FaultCase, tool: ToolCase, upstream: tuple[Sandbox, Any]) -> None:
    expect = case.read

    def arguments(id: int | None) -> dict[str, Any]:
        return {"id": id} if id is not None else {}

    sandbox, server, id, result = await call_once_faulted(upstream, tool, case, arguments)
    gets = sandbox.count("GET", tool.path_for(id))
    MEASURED["read", case.id].add((gets, None))
    assert gets == expect.gets, text_of(result)
    assert sandbox.count("POST") == 0
    assert_outcome(result, tool, id, case, expect.fails, expect.says)
    await next_call_works(server, tool, arguments(id))


@pytest.mark.parametrize("case", FAULTS, ids=FAULT_IDS)
async def test_a_wait_under_a_fault(case: FaultCase, upstream: tuple[Sandbox, Any]) -> None:
    expect, tool = case.wait, WAIT_TOOL

    def arguments(id: int | None) -> dict[str, Any]:
        return {"kind": tool.kind, "id": id, "timeout_seconds": 20}

    sandbox, server, id, result = await call_once_faulted(upstream, tool, case, arguments)
    polls = sandbox.count("GET", tool.path_for(id))
    MEASURED["wait", case.id].add((polls, None))
    assert polls == expect.polls, text_of(result)
    assert sandbox.count("POST") == 0
    assert_outcome(result, tool, id, case, expect.fails, expect.says)
    if not expect.fails:
        assert result.structured_content is not None
        assert result.structured_content["ready"] is True
    await next_call_works(server, tool, arguments(id))


@pytest.mark.parametrize("tool", DELETE_TOOLS, ids=[t.name for t in DELETE_TOOLS])
@pytest.mark.parametrize("case", FAULTS, ids=FAULT_IDS)
async def test_a_delete_under_a_fault(case: FaultCase, tool: ToolCase, upstream: tuple[Sandbox, Any]) -> None:
    expect = case.delete

    def arguments(id: int | None) -> dict[str, Any]:
        return {"id": id, "confirm_name": TARGET}

    sandbox, server, id, result = await call_once_faulted(upstream, tool, case, arguments)
    deletes, gets = sandbox.count("DELETE", tool.path_for(id)), sandbox.count("GET", tool.path_for(id))
    MEASURED["delete", case.id].add((deletes, gets))
    assert (deletes, gets) == (expect.deletes, expect.gets), text_of(result)
    assert sandbox.count("POST") == 0
    assert_outcome(result, tool, id, case, expect.outcome == "error", expect.says)
    assert (instances_named(sandbox, tool.kind) == 0) is (expect.outcome == "deleted")
    if expect.outcome != "error":
        assert result.structured_content is not None
        assert result.structured_content["deleted"] is (expect.outcome == "deleted")
    if expect.outcome == "deleted":
        listed = await next_call_works(server, ToolCase(f"list_{KINDS[tool.kind].collection}", "GET", ""), {})
        assert listed.structured_content is not None and listed.structured_content["total"] == 0
    else:
        again = await next_call_works(server, tool, arguments(id))
        assert again.structured_content is not None and again.structured_content["deleted"] is True


@pytest.mark.parametrize("tool", CREATE_TOOLS, ids=[t.name for t in CREATE_TOOLS])
@pytest.mark.parametrize("case", FAULTS, ids=FAULT_IDS)
async def test_a_create_under_a_fault(case: FaultCase, tool: ToolCase, upstream: tuple[Sandbox, Any]) -> None:
    expect = case.create

    def arguments(id: int | None) -> dict[str, Any]:
        return dict(CREATE_ARGS, name=TARGET)

    sandbox, server, id, result = await call_once_faulted(upstream, tool, case, arguments)
    posts, list_gets = sandbox.count("POST", tool.path), sandbox.count("GET", tool.path)
    MEASURED["create", case.id].add((posts, list_gets))
    assert (posts, list_gets) == (expect.posts, expect.list_gets), text_of(result)
    assert_outcome(result, tool, id, case, expect.outcome == "error", expect.says)
    # At most one instance per call, whatever happened on the way.
    assert instances_named(sandbox, tool.kind) == (0 if expect.outcome == "error" else 1)
    data = result.structured_content or {}
    if expect.outcome == "created":
        assert data["created"] is True and data["password_delivery"] == "file"
        assert Path(data["credentials_file"]).is_file()
    elif expect.outcome == "reconciled":
        assert data["created"] is True and data["password_delivery"] == "not_returned"
        assert data["password"] is None and data["credentials_file"] is None
        assert "password is unknown" in data["message"]
        assert f"delete_{tool.kind}" in data["next_step"] and "pass" in data["next_step"]
    again = await next_call_works(server, tool, arguments(None))
    assert again.structured_content is not None
    assert again.structured_content["created"] is (expect.outcome == "error")  # an existing one is reported
    assert instances_named(sandbox, tool.kind) == 1  # never duplicated


def test_the_matrix_covers_every_tool() -> None:
    # The data tools' one API call is the instance's GET, the one get_database makes (covered here);
    # what can fail after it (connecting, the engine) is tested in tests/test_data_tools_*.py.
    api_tools = [spec.name for spec in TOOL_SPECS if spec.profile.data is None]
    assert sorted(t.name for t in ALL_TOOLS) == sorted(api_tools)
    assert len(set(FAULT_IDS)) == len(FAULTS)


# --- creates: faults on the look-ups around the POST --------------------------------------------------


async def test_create_refuses_when_the_name_check_fails(sandbox: Sandbox, server_on: Callable[..., Any]) -> None:
    sandbox.faults.add(method="GET", path="/v1/databases", status=503, times=-1)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_database", dict(CREATE_ARGS, name=TARGET))
    text = assert_clear_error(result, "create_database", status=503)
    assert "Nothing was created" in text
    assert sandbox.count("POST") == 0  # never POST without knowing the name is free
    assert sandbox.count("GET", "/v1/databases") == FAST_RETRY.attempts


async def test_create_retries_the_name_check_then_posts_once(sandbox: Sandbox, server_on: Callable[..., Any]) -> None:
    sandbox.faults.add(method="GET", path="/v1/redis", drop=True)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_redis", dict(CREATE_ARGS, name=TARGET))
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
        result = await client.call_tool("create_database", dict(CREATE_ARGS, name=TARGET))
        text = text_of(result)
        assert result.is_error and "Traceback" not in text
        assert "Could not tell whether PostgreSQL database 'target' was created" in text
        assert "RemoteProtocolError" in text and "HTTP 503" in text  # what happened to the create, and to the look-up
        assert "do not simply create it again" in text and "Call list_databases" in text
        assert sandbox.count("POST") == 1
        assert sandbox.count("GET", "/v1/databases") == 1 + FAST_RETRY.attempts
        assert instances_named(sandbox, "database") == 1  # it did happen upstream

        sandbox.faults.clear()  # the model follows the advice: the API answers again
        again = await client.call_tool("create_database", dict(CREATE_ARGS, name=TARGET))
        assert again.structured_content["created"] is False  # found, not duplicated
    assert sandbox.count("POST") == 1 and instances_named(sandbox, "database") == 1


async def test_create_not_applied_then_the_retry_applied_but_lost(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    sandbox.faults.add(method="POST", path="/v1/redis", status=502)  # not applied: the look-up finds nothing
    sandbox.faults.add(method="POST", path="/v1/redis", apply=True, timeout=True)  # the retry: applied, lost
    async with connect(server_on()) as client:
        result = await client.call_tool("create_redis", dict(CREATE_ARGS, name=TARGET))
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
        result = await client.call_tool("create_database", dict(CREATE_ARGS, name=TARGET))
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
        result = await client.call_tool("create_redis", dict(CREATE_ARGS, name=TARGET))
    text = text_of(result)
    assert result.is_error and "Could not tell whether Redis instance 'target' was created" in text
    assert text.count("answered HTTP 502") == 2  # both attempts are named
    assert sandbox.count("POST") == 2


async def test_create_with_a_supplied_password_recovers_completely(
    sandbox: Sandbox, server_on: Callable[..., Any], credentials_dir: Path
) -> None:
    """Found after a lost answer, but the caller chose the password: it is known and saved as usual."""
    secret = "my-own-Secret-99"
    sandbox.faults.add(method="POST", path="/v1/databases", apply=True, drop=True)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_database", dict(CREATE_ARGS, name=TARGET, db_password=secret))
    data = result.structured_content
    assert not result.is_error and data["created"] is True
    assert data["password_delivery"] == "caller_supplied" and data["password"] is None
    assert "found it" in data["message"] and secret not in text_of(result)
    assert f"PGPASSWORD={secret}" in Path(data["credentials_file"]).read_text().replace("'", "")
    assert sandbox.count("POST") == 1 and instances_named(sandbox, "database") == 1


async def test_create_409_because_another_request_took_the_name(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    sandbox.faults.add(method="POST", path="/v1/databases", status=409, apply=True)  # created "by someone else"
    async with connect(server_on()) as client:
        result = await client.call_tool("create_database", dict(CREATE_ARGS, name=TARGET))
    data = result.structured_content
    assert not result.is_error and data["created"] is False and data["password_delivery"] == "unknown"
    assert "Another request created it" in data["message"]
    assert sandbox.count("POST") == 1 and instances_named(sandbox, "database") == 1


async def test_create_rate_limited_twice_creates_nothing(sandbox: Sandbox, server_on: Callable[..., Any]) -> None:
    sandbox.faults.add(method="POST", path="/v1/redis", status=429, retry_after="0", times=2)
    async with connect(server_on()) as client:
        result = await client.call_tool("create_redis", dict(CREATE_ARGS, name=TARGET))
    text = assert_clear_error(result, "create_redis", status=429)
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
            result = await client.call_tool("list_create_options", {})
        text = assert_clear_error(result, "list_create_options", status=None)
        assert "this call had left" in text
        assert sandbox.count("GET", "/v1/flavors") == 1  # no retry once the time is spent
        sandbox.faults.clear()
        assert not (await client.call_tool("list_create_options", {})).is_error


async def test_a_hanging_create_still_ends_reconciled_within_the_deadline(
    sandbox: Sandbox, server_on: Callable[..., Any], short_deadline: float
) -> None:
    """The POST may take only half the time left, so the look-up that settles it always gets its turn."""
    sandbox.faults.add(method="POST", path="/v1/databases", apply=True, timeout=True)
    async with connect(server_on(timeout=None)) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("create_database", dict(CREATE_ARGS, name=TARGET))
    assert not result.is_error, text_of(result)
    assert result.structured_content["password_delivery"] == "not_returned"
    assert "this call had left" in result.structured_content["message"]
    assert sandbox.count("POST") == 1 and instances_named(sandbox, "database") == 1


@pytest.mark.parametrize(
    ("seconds_ahead", "waited"),
    [(3, f"waiting {FAST_RETRY.retry_after_max:.2f}s"), (-60, "waiting 0.00s")],
    ids=["ahead: waits, capped", "past: at once"],
)
async def test_retry_after_as_an_http_date_is_honoured(
    sandbox: Sandbox, server_on: Callable[..., Any], caplog: pytest.LogCaptureFixture, seconds_ahead: int, waited: str
) -> None:
    """The retry waits as long as the date says (capped by the policy): 3 s ahead means the cap (0.05 s
    in the tests), a date already past means at once. Ignoring the date would leave the backoff alone
    (at most 0.001 s here): both cases would log 0.00 s. Read from the retry's own log line."""
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_ahead), usegmt=True)
    sandbox.faults.add(method="GET", path="/v1/me", status=503, retry_after=when)
    assert FAST_RETRY.backoff_initial < 0.005 < FAST_RETRY.retry_after_max  # a first backoff is at most backoff_initial
    caplog.set_level(logging.INFO, logger="redu_mcp.api")
    async with connect(server_on()) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error and sandbox.count("GET", "/v1/me") == 2  # failed once, then retried
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying GET /me")]
    assert len(retries) == 1 and retries[0].endswith(waited), retries


async def test_retry_after_as_a_date_beyond_the_deadline_fails_fast(
    sandbox: Sandbox, server_on: Callable[..., Any]
) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    sandbox.faults.add(method="GET", path="/v1/me", status=429, retry_after=when, times=-1)
    async with connect(server_on()) as client:
        result = await client.call_tool("whoami", {})
    text = assert_clear_error(result, "whoami", status=429)
    assert "again in 3" in text and "UTC" in text  # ~3600 s, and the clock time
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
        result = await client.call_tool("wait_for_ready", {"kind": "redis", "id": id}, progress_callback=progress)
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
        assert result.is_error and f"No answer about PostgreSQL database {id} within 0.5 s" in text
        assert "last poll" in text and "call wait_for_ready again" in text
        assert sandbox.count("GET", path) == 1
        sandbox.faults.clear()
        assert (await client.call_tool("wait_for_ready", {"kind": "database", "id": id})).structured_content["ready"]


@pytest.mark.parametrize("mode", MODES)
async def test_cancelling_a_wait_mid_poll_stops_upstream_requests(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    slow = Sandbox(provisioning_seconds=600)  # it stays "provisioning": the wait would poll on and on
    id = await make_instance(slow, "redis")
    control = await make_instance(slow, "redis", "control")  # a second wait that is not cancelled
    path, control_path = f"/v1/redis/{id}", f"/v1/redis/{control}"
    slow.faults.add(method="GET", path=path, delay=0.05, times=-1)  # every poll is slow, so one is in flight
    server = build_server(make_settings(), client=slow.client(retry=FAST_RETRY, timeout=TIMEOUT))
    args = {"kind": "redis", "timeout_seconds": 45}
    async with connect(server, mode) as client:
        scope = anyio.CancelScope()

        async def cancelled_wait() -> None:
            with scope:
                await client.call_tool("wait_for_ready", dict(args, id=id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(client.call_tool, "wait_for_ready", dict(args, id=control)))
            tg.start_soon(cancelled_wait)
            await until(lambda: slow.count("GET", path) >= 2, "the wait to poll twice")  # it was polling
            scope.cancel()  # mid-poll, most likely (each poll takes 0.05 s of the 0.05 s interval)
            # It stopped with the cancel, while the control wait on the same server polls on.
            await stays_still(lambda: slow.count("GET", path), lambda: slow.count("GET", control_path), "the polls")
            tg.cancel_scope.cancel()
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
    assert_clear_error(result, "delete_database", status=502)
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
    assert "HTTP 200 instead of 204" in text and f"get_redis with id={id}" in text
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
