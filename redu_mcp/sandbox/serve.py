"""Serve the sandbox on a TCP port, for clients in other processes (``redu-mcp sandbox --port 8080``).

``serve()`` runs it in the foreground until Ctrl+C. ``running_sandbox()`` runs it in a background
thread for tests::

    with running_sandbox(port=0) as (base_url, sandbox):
        ...  # talk HTTP to base_url; inspect or fault `sandbox` directly

Port 0 picks a free port; the socket is bound before anything is printed or yielded, so the URL
always names the real port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator

import uvicorn

from redu_mcp.sandbox import Sandbox

STARTUP_TIMEOUT = 10.0  # seconds running_sandbox waits for the server thread to come up


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    provisioning_seconds: float = 3.0,
    page_size: int = 50,
    sandbox: Sandbox | None = None,
    engines: bool = False,
) -> None:
    """Serve the sandbox API at ``http://HOST:PORT/v1`` until interrupted.

    With ``engines``, every instance is a real PostgreSQL or Redis server on loopback (raises
    ``EngineUnavailable`` up front when the programs are missing)."""
    owned = sandbox is None
    if sandbox is None and engines:
        from redu_mcp.sandbox.engine_provisioner import EngineProvisioner
        from redu_mcp.sandbox.engines import check_engines_available

        check_engines_available()
        sandbox = Sandbox(page_size=page_size, provisioner=EngineProvisioner())
    sandbox = sandbox or Sandbox(provisioning_seconds=provisioning_seconds, page_size=page_size)
    sock = _bind(host, port)
    url = base_url(host, sock.getsockname()[1])
    print(banner(url, sandbox.default_key), file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(sandbox.app, host=host, port=port, log_level="info"))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl+C it handled gracefully
        asyncio.run(_serve(server, sock, sandbox if owned else None))


@contextlib.contextmanager
def running_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    provisioning_seconds: float = 3.0,
    page_size: int = 50,
    sandbox: Sandbox | None = None,
    log_level: str = "warning",
) -> Iterator[tuple[str, Sandbox]]:
    """Serve a sandbox in a background thread; yield ``(base_url, sandbox)``; stop it on exit.

    Logging goes through the process's own logging setup (uvicorn's is not installed), so tests can
    capture it. A sandbox passed in is not closed here; one created here is.
    """
    owned = sandbox is None
    sandbox = sandbox or Sandbox(provisioning_seconds=provisioning_seconds, page_size=page_size)
    sock = _bind(host, port)
    url = base_url(host, sock.getsockname()[1])
    config = uvicorn.Config(
        sandbox.app, host=host, port=port, log_config=None, log_level=log_level, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_serve(server, sock, sandbox if owned else None))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"redu-sandbox {url}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the sandbox server at {url} did not start") from (failure[0] if failure else None)
        time.sleep(0.005)
    try:
        yield url, sandbox
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)


def base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def banner(url: str, api_key: str) -> str:
    header = shlex.quote(f"x-api-key: {api_key}")
    return (
        f"Redu sandbox API at {url}  (API key: {api_key})\n"
        f"  try: curl -s -H {header} {url}/flavors\n"
        f"  use: REDU_API_URL={url} REDU_API_KEY={shlex.quote(api_key)}  (Ctrl+C stops the sandbox)"
    )


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before uvicorn starts, so port 0 is resolved up front.

    Made with proto=IPPROTO_TCP (unlike ``socket.create_server``) so that asyncio sets TCP_NODELAY on
    the connections it accepts; without it every keep-alive request waits ~40 ms for a delayed ACK.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "posix":  # as socket.create_server does: on Windows it would allow port theft
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


async def _serve(server: uvicorn.Server, sock: socket.socket, owned: Sandbox | None) -> None:
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
        if owned is not None:
            await owned.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m redu_mcp.sandbox.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--provisioning-seconds", type=float, default=3.0)
    parser.add_argument("--page-size", type=int, default=50)
    args = parser.parse_args(argv)
    serve(args.host, args.port, provisioning_seconds=args.provisioning_seconds, page_size=args.page_size)


if __name__ == "__main__":
    main()
