"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client

from redu_mcp.api import KINDS, KindName, RetryPolicy
from redu_mcp.sandbox import Account, Sandbox
from redu_mcp.server import Settings
from redu_mcp.server.http import build_http_app
from redu_mcp.server.runtime import Runtime

#: Retries that behave like production (same decisions) but wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(attempts=4, backoff_initial=0.001, backoff_max=0.01, retry_after_max=0.05, total_seconds=5)

#: Both protocol eras the SDK speaks: 2026-07-28 (auto) and 2025-11-25 with the initialize handshake.
MODES = ["auto", "legacy"]

REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 20.0  # seconds a child server may take to start (python imports on a busy CI box)

#: The look-up values every create in the tests uses (the sandbox's seeds).
CREATE_ARGS = {"flavor_id": "1", "network_id": "net-private", "keypair_name": "default-key"}


def connect(server: Any, mode: str = "auto", **options: Any) -> Client:
    """A real MCP client on ``server`` in the given era."""
    return Client(server, mode=mode, **options)


async def create(client: Client, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    """Create an instance through the tool and return its structured result (asserting success)."""
    args = dict(CREATE_ARGS, name=name, **extra)
    result = await client.call_tool(f"create_{kind}", args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def seed_instance(sandbox: Sandbox, kind: KindName, name: str, **fields: Any) -> int:
    """An instance created straight on the sandbox (not through the server under test); its id."""
    api_kind = KINDS[kind]
    body = api_kind.create_body(name=name, **CREATE_ARGS, **fields)
    async with sandbox.client(retry=FAST_RETRY) as api:
        return (await api.create_instance(api_kind, body)).id


# --- waiting on a condition, not on the clock ---------------------------------------------------------------

#: Seconds a condition may take to come true before the test fails: a hang guard, not a measurement.
CONDITION_TIMEOUT = 20.0


async def until(condition: Callable[[], bool], what: str, timeout: float = CONDITION_TIMEOUT) -> None:
    """Return as soon as ``condition()`` holds (checked every 10 ms); fail after ``timeout`` s."""
    deadline = anyio.current_time() + timeout
    while not condition():
        if anyio.current_time() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        await anyio.sleep(0.01)


async def stays_still(count: Callable[[], int], control: Callable[[], int], what: str, polls: int = 3) -> None:
    """Wait until ``count()`` stays unchanged while ``control()`` (something polling at the same
    interval on the same server) advances ``polls`` times; fail if that never happens.

    "It stopped" measured against a control that keeps going, not against a sleep: on a busy machine
    every interval stretches, the control's and the stopped one's alike, so no number here depends on
    the scheduler. A cancellation still on its way may let the count move at first; it must then stop.
    """
    deadline = anyio.current_time() + CONDITION_TIMEOUT
    while True:
        before, start = count(), control()
        await until(lambda start=start: control() >= start + polls, f"the control to poll {polls} more times")
        if count() == before:
            return
        if anyio.current_time() > deadline:
            pytest.fail(f"still moving after {CONDITION_TIMEOUT} s while the control polled on: {what}")


def missing_engines() -> str | None:
    """Why the real-engine tests cannot run here (None when PostgreSQL and redis-server are installed)."""
    from redu_mcp.sandbox.engines import EngineUnavailable, check_engines_available

    try:
        check_engines_available()
    except EngineUnavailable as exc:
        return str(exc)
    return None


# --- serving over HTTP ----------------------------------------------------------------------------

#: Two Redu users of a pass-through server (``two_users()``): their API keys.
ALICE = "sk-live-alice-1f2e3d4c5b6a7988"
BOB = "sk-live-bob-9a8b7c6d5e4f3021"
#: A handshake-era ``initialize``: the request that opens a session.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def two_users(**options: Any) -> Sandbox:
    """A sandbox that knows two API keys, ALICE's and BOB's."""
    return Sandbox(
        api_keys={
            ALICE: Account("usr_alice", "alice", "alice@example.com"),
            BOB: Account("usr_bob", "bob", "bob@example.com"),
        },
        **{"provisioning_seconds": 0.3, **options},
    )


async def raw_post(
    url: str, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None
) -> httpx2.Response:
    """One POST of ``body`` (default: an ``initialize``) with the MCP headers plus ``headers``."""
    async with httpx2.AsyncClient() as http:
        return await http.post(url, headers={**MCP_HEADERS, **(headers or {})}, content=json.dumps(body or INITIALIZE))


def listening_socket() -> socket.socket:
    """A socket listening on a free loopback port."""
    # IPPROTO_TCP, so asyncio sets TCP_NODELAY (no ~40 ms delayed-ACK stall per keep-alive request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@asynccontextmanager
async def serving_asgi(app: Any, sock: socket.socket | None = None, *, lifespan: str = "on") -> AsyncIterator[int]:
    """Serve an ASGI app under uvicorn on ``sock`` (default: a free loopback port) in this event loop;
    yield the port."""
    sock = sock or listening_socket()
    config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: server.serve(sockets=[sock]))
            with anyio.fail_after(STARTUP_TIMEOUT):
                while not server.started:
                    await anyio.sleep(0.01)
            try:
                yield sock.getsockname()[1]
            finally:
                server.should_exit = True
    finally:
        sock.close()


@asynccontextmanager
async def serving_mcp_http(settings: Settings, sandbox: Sandbox) -> AsyncIterator[tuple[str, Runtime]]:
    """``build_http_app(settings)`` on a loopback port; yield (the MCP endpoint URL, the server's runtime)."""
    sock = listening_socket()
    settings.port = sock.getsockname()[1]  # before building: the app's auth resource URL names it
    app, runtime = build_http_app(settings, client=sandbox.client())
    async with serving_asgi(app, sock) as port:
        yield f"http://127.0.0.1:{port}{settings.path}", runtime


@asynccontextmanager
async def serving_http(settings: Settings, sandbox: Sandbox) -> AsyncIterator[str]:
    """Serve ``build_http_app(settings)`` on a loopback socket; yield the MCP endpoint URL."""
    async with serving_mcp_http(settings, sandbox) as (url, _runtime):
        yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("redu-mcp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "redu_mcp"]


#: How the start-up banner shows a generated token (the claude line's --header).
BANNER_TOKEN = re.compile(r'--header "Authorization: Bearer ([^"\s]+)"')


@dataclass
class CliServer:
    """A ``redu-mcp --transport http`` child process: where it listens and what it printed."""

    url: str
    log_path: Path
    state: Path  # its XDG_STATE_HOME
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def token(self) -> str | None:
        """The bearer token its banner printed (None when it printed none: --auth none, an operator token)."""
        match = BANNER_TOKEN.search(self.log())
        return match.group(1) if match else None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, mode: str = "auto", bearer: str | None = None) -> Any:
        """``async with``: an ``mcp.Client`` over HTTP sending the printed token (or ``bearer``)."""
        return http_client(self.url, mode, bearer or self.token)


@asynccontextmanager
async def http_client(
    url: str, mode: str = "auto", bearer: str | None = None, **http_options: Any
) -> AsyncIterator[Client]:
    """An ``mcp.Client`` on a streamable HTTP endpoint, sending ``Authorization: Bearer <bearer>``."""
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60), **http_options)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


@contextmanager
def cli_http_server(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None, host: str = "127.0.0.1", umask: int | None = None
) -> Iterator[CliServer]:
    """``redu-mcp --transport http --sandbox`` on a free port (state in ``tmp_path/cli-state``); yields
    it once it accepts connections. ``env`` is added to this process's environment (minus REDU_*)."""
    port = free_port()
    log_path = tmp_path / f"redu-mcp-{port}.log"
    log = log_path.open("w+")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("REDU_")}
    child_env.update({"XDG_STATE_HOME": str(tmp_path / "cli-state"), **(env or {})})
    state = Path(child_env["XDG_STATE_HOME"])
    process = subprocess.Popen(
        [*cli_command(), "--transport", "http", "--sandbox", "--host", host, "--port", str(port),
         "--provisioning-seconds", "0.2", *extra],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=child_env, cwd=REPO,
        umask=-1 if umask is None else umask,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"redu-mcp exited with {process.returncode} before serving:\n{log.read()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"redu-mcp did not listen on port {port} within {STARTUP_TIMEOUT}s")
                time.sleep(0.05)
        yield CliServer(f"http://127.0.0.1:{port}/mcp", log_path, state, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class AtAddress:
    """A sandbox provisioner whose instances are ready at once, at a real engine's address (the data
    tools' tests: the server connects to the engine with the password the create saved)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def start(self, record: Any, password: str) -> None:
        return None

    async def refresh(self, record: Any) -> None:
        if record.public["status"] == "provisioning":
            record.public.update(status="ready", floating_ip=self.host, port=self.port)

    async def stop(self, record: Any) -> None:
        return None

    async def aclose(self) -> None:
        return None
