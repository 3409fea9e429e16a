"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn
from mcp import Client

from redu_mcp.api import KINDS, KindName, RetryPolicy
from redu_mcp.sandbox import Sandbox
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


def missing_engines() -> str | None:
    """Why the real-engine tests cannot run here (None when PostgreSQL and redis-server are installed)."""
    from redu_mcp.sandbox.engines import EngineUnavailable, check_engines_available

    try:
        check_engines_available()
    except EngineUnavailable as exc:
        return str(exc)
    return None


# --- serving over HTTP ----------------------------------------------------------------------------


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
    app, runtime = build_http_app(settings, sandbox=sandbox)
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


@contextmanager
def cli_http_server(tmp_path: Path, *extra: str) -> Iterator[str]:
    """``redu-mcp --transport http --sandbox`` on a free port; yields its URL once it accepts connections."""
    port = free_port()
    log = (tmp_path / f"redu-mcp-{port}.log").open("w+")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "cli-state"))
    process = subprocess.Popen(
        [*cli_command(), "--transport", "http", "--sandbox", "--port", str(port), "--provisioning-seconds", "0.2", *extra],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
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
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
