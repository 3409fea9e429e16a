"""A session flood over streamable HTTP: what one abuser gets, and what a second user still gets.

One pass-through server (``--auth passthrough``, an in-process sandbox that knows two keys) runs in
its own process. Alice sends ``FLOOD`` handshake-era ``initialize`` requests (64 at a time) and
never ends a session; then Bob connects with ``mcp.Client`` in both protocol eras and calls a tool.
Twice: with the SDK's global cap alone (what the security review measured: no per-principal
limits), and with redu-mcp's default ``HttpLimits``.

Reported: sessions Alice opened, how the rest were answered, the server's RSS before and after the
flood, and whether Bob got in.

    uv run python bench/http_flood.py [--flood 10000]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

from common import HOST, PY, Row, child_env, free_port, print_rows, rss_kib, serving

ALICE = "sk-live-alice-flood-0000000001"
BOB = "sk-live-bob-flood-0000000002"
FLOOD = 10_000
CONCURRENCY = 64
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "flood", "version": "1"}},
}
UNLIMITED = 10**9


def serve(port: int, limits: str) -> None:
    """The server under test (child process)."""
    import uvicorn

    from redu_mcp.sandbox import Account, Sandbox
    from redu_mcp.server import Settings
    from redu_mcp.server.http import build_http_app
    from redu_mcp.server.settings import HttpLimits

    numbers = (
        HttpLimits()
        if limits == "default"
        else HttpLimits(  # the SDK's own cap and idle timeout only, as before per-principal limits
            max_sessions=10_000,
            max_sessions_per_principal=UNLIMITED,
            new_sessions_per_minute=UNLIMITED,
            key_checks_per_minute=UNLIMITED,
        )
    )
    sandbox = Sandbox(
        api_keys={
            ALICE: Account("usr_alice", "alice", "a@example.com"),
            BOB: Account("usr_bob", "bob", "b@example.com"),
        }
    )
    settings = Settings(sandbox=True, transport="http", port=port, auth_passthrough=True, http_limits=numbers)
    app, _ = build_http_app(settings, client=sandbox.client())
    uvicorn.run(app, host=HOST, port=port, log_level="error", lifespan="on")


async def bob_gets_in(url: str) -> dict[str, str]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    seen: dict[str, str] = {}
    for mode in ("legacy", "auto"):
        statuses: list[int] = []

        async def hook(response: httpx2.Response, statuses: list[int] = statuses) -> None:
            statuses.append(response.status_code)

        try:
            async with (
                httpx2.AsyncClient(
                    headers={"Authorization": f"Bearer {BOB}"}, event_hooks={"response": [hook]}
                ) as http,
                Client(streamable_http_client(url, http_client=http), mode=mode) as client,
            ):
                me = await client.call_tool("whoami", {})
                seen[mode] = "yes" if me.structured_content["user"]["username"] == "bob" else "wrong user"
        except BaseException:
            seen[mode] = f"no (HTTP {','.join(map(str, sorted(set(statuses) - {200, 202})))})"
    return seen


async def flood(url: str, count: int) -> tuple[collections.Counter[int], float]:
    import anyio
    import httpx2

    answers: collections.Counter[int] = collections.Counter()
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "authorization": f"Bearer {ALICE}",
    }
    left = iter(range(count))
    started = time.monotonic()

    async def worker(http: httpx2.AsyncClient) -> None:
        for _ in left:
            try:
                response = await http.post(url, headers=headers, json=INITIALIZE)
                answers[response.status_code] += 1
            except httpx2.HTTPError:
                answers[0] += 1

    async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=CONCURRENCY)) as http:
        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENCY):
                tg.start_soon(worker, http)
    return answers, time.monotonic() - started


async def measure(count: int) -> list[Row]:
    rows: list[Row] = []
    for limits, label in (("off", "SDK cap only (before)"), ("default", "default HttpLimits (now)")):
        port = free_port()
        url = f"http://{HOST}:{port}/mcp"
        with serving([PY, __file__, "--serve", str(port), "--limits", limits], port, env=child_env()) as server:
            await bob_gets_in(url)  # warm-up: imports, first sessions (then ended)
            before = rss_kib(server.pid)
            answers, seconds = await flood(url, count)
            after = rss_kib(server.pid)
            bob = await bob_gets_in(url)
        opened = answers.get(200, 0)
        others = ", ".join(f"{n} × {'error' if s == 0 else s}" for s, n in sorted(answers.items()) if s != 200)
        rows += [
            Row("http_flood", f"{label}: sessions alice opened", opened, None, "sessions",
                note=f"{count} initialize in {seconds:.1f} s; the rest: {others or 'none'}"),
            Row("http_flood", "  server RSS growth from the flood", (after - before) / 1024, None, "MiB",
                note=f"{before / 1024:.0f} MiB before, {after / 1024:.0f} MiB after"
                + (f"; {(after - before) / opened:.0f} KiB per session" if opened else "")),
            Row("http_flood", "  bob gets in (legacy / 2026-07-28)", None, None, "",
                note=f"legacy: {bob['legacy']}; 2026-07-28: {bob['auto']}"),
        ]  # fmt: skip
    return rows


def run(count: int = FLOOD) -> list[Row]:
    import anyio

    return anyio.run(measure, count)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", type=int, default=FLOOD, help="initialize requests alice sends")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--limits", choices=["off", "default"], default="default", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.exit(serve(args.serve, args.limits))
    print_rows(run(args.flood))
