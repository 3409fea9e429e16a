"""HTTP throughput: tool calls per second and p50/p99 latency, 50 concurrent clients, streamable HTTP.

Ours: ``python -m redu_mcp --sandbox --transport http`` answering ``list_databases`` (a real tool: it
reads the in-process sandbox through the API client, so every call does an in-process API request,
validation and a structured result). Floor: ``bench/floor_server.py --http`` answering its trivial
``echo``. Both are served the same way (uvicorn, SSE responses, DNS-rebinding protection on), on the
same machine, in the same run: floor, ours, floor, ours, ``SECONDS`` each, after a warm-up.

The load generator replays, on ``clients`` concurrent keep-alive connections, the exact 2026-07-28
``tools/call`` requests ``mcp.Client`` sends (checked first with one real ``mcp.Client`` call), each
caller back to back. A full ``mcp.Client`` per caller costs more CPU per call than either server
(it validates every result), and on 2 cores the benchmark would then measure the load generator.
Its CPU still competes with the server, so the server's CPU time per call is reported too: it does
not depend on the load generator.

    uv run python bench/throughput.py [--seconds 5] [--clients 50]
"""

from __future__ import annotations

import argparse
import time

from common import (
    AUTH,
    BENCH,
    FLOOR_STDIO,
    HOST,
    OURS_STDIO,
    PY,
    Row,
    child_env,
    cpu_seconds,
    free_port,
    percentile,
    print_rows,
    serving,
)

TARGET = 0.8
ROUNDS = 2
WARMUP_SECONDS = 1.0


def _call_body(request_id: int, tool: str, arguments: dict) -> dict:
    """A 2026-07-28 ``tools/call``, exactly as ``mcp.Client`` sends it (no progress token: JSON answer)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "redu-bench", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta},
    }


async def _check_with_mcp_client(url: str, tool: str, arguments: dict) -> None:
    """One call through the real ``mcp.Client`` first: the server speaks the protocol we replay."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(timeout=30, headers=AUTH) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool(tool, arguments)
        assert not result.is_error, result.content


async def _load(
    url: str, tool: str, arguments: dict, clients: int, seconds: float
) -> tuple[int, list[float], int, float]:
    """Calls completed, their latencies, errors and the measured seconds: ``clients`` concurrent
    callers, each on its own connection, calling back to back for ``seconds`` after a warm-up."""
    import anyio
    import httpx2

    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": tool,
        **AUTH,
    }
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop_at = time.monotonic() + WARMUP_SECONDS + seconds
    ids = iter(range(1, 10**9))

    async def caller(http: httpx2.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            response = await http.post(url, json=_call_body(next(ids), tool, arguments), headers=headers)
            ok = response.status_code == 200 and response.json().get("result", {}).get("isError") is False
            if measuring:
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(timeout=30, limits=limits) as http:
        with anyio.fail_after(seconds + WARMUP_SECONDS + 60):
            async with anyio.create_task_group() as tg:
                for _ in range(clients):
                    tg.start_soon(caller, http)
                await anyio.sleep(WARMUP_SECONDS)
                measuring = True
                measure_started = time.monotonic()
                await anyio.sleep(seconds)
                measuring = False
                measured = time.monotonic() - measure_started
    return len(latencies), latencies, errors, measured


async def measure(seconds: float, clients: int) -> list[Row]:
    targets = {
        "floor": ([*FLOOR_STDIO, "--http"], "echo", {"text": "pong"}),
        "ours": ([*OURS_STDIO, "--sandbox", "--transport", "http"], "list_databases", {}),
        # Diagnosis: the same server with list_databases answered from memory (no API request at all).
        "stubbed": ([PY, str(BENCH / "stubbed_upstream.py"), "--sandbox", "--transport", "http"], "list_databases", {}),
    }
    stats: dict[str, dict] = {
        name: {"calls": 0, "seconds": 0.0, "lat": [], "errors": 0, "cpu": 0.0} for name in targets
    }
    for _ in range(ROUNDS):
        for name, (cmd, tool, arguments) in targets.items():
            port = free_port()
            with serving([*cmd, "--host", HOST, "--port", str(port)], port, env=child_env()) as server:
                url = f"http://{HOST}:{port}/mcp"
                await _check_with_mcp_client(url, tool, arguments)  # also: first-call work off the clock
                cpu_before = cpu_seconds(server.pid)
                calls, latencies, errors, measured = await _load(url, tool, arguments, clients, seconds)
                cpu = cpu_seconds(server.pid) - cpu_before
            s = stats[name]
            s["calls"] += calls
            s["seconds"] += measured
            s["lat"].extend(latencies)
            s["errors"] += errors
            s["cpu"] += cpu
    rows: list[Row] = []
    summary = {}
    for name, s in stats.items():
        summary[name] = {
            "rps": s["calls"] / s["seconds"],
            "p50_ms": percentile(s["lat"], 50) * 1000,
            "p99_ms": percentile(s["lat"], 99) * 1000,
            # CPU over the whole load window (warm-up included) per measured call: an upper bound
            "cpu_ms_per_call": s["cpu"]
            * 1000
            / max(1, s["calls"])
            * s["seconds"]
            / (s["seconds"] + ROUNDS * WARMUP_SECONDS),
            "errors": s["errors"],
            "calls": s["calls"],
        }
    ours, floor = summary["ours"], summary["floor"]
    ratio = ours["rps"] / floor["rps"]
    rows.append(
        Row(
            "throughput",
            f"calls/s, {clients} clients, streamable HTTP",
            ours["rps"],
            floor["rps"],
            "calls/s",
            ratio,
            f"≥ {TARGET}× floor",
            ratio >= TARGET and not ours["errors"],
            f"ours list_databases vs floor echo; {ours['calls']} / {floor['calls']} calls; errors {ours['errors']}",
            summary,
        )
    )
    rows.append(
        Row(
            "throughput",
            "  p50 latency",
            ours["p50_ms"],
            floor["p50_ms"],
            "ms",
            ours["p50_ms"] / floor["p50_ms"],
            "",
            None,
        )
    )
    rows.append(
        Row(
            "throughput",
            "  p99 latency",
            ours["p99_ms"],
            floor["p99_ms"],
            "ms",
            ours["p99_ms"] / floor["p99_ms"],
            "",
            None,
        )
    )
    rows.append(
        Row(
            "throughput",
            "  server CPU per call",
            ours["cpu_ms_per_call"],
            floor["cpu_ms_per_call"],
            "ms",
            ours["cpu_ms_per_call"] / floor["cpu_ms_per_call"],
            "",
            None,
            "server process CPU time / calls: independent of the load generator's speed",
        )
    )
    stubbed = summary["stubbed"]
    rows.append(
        Row(
            "throughput",
            "  calls/s, list_databases with its API call stubbed",
            stubbed["rps"],
            floor["rps"],
            "calls/s",
            stubbed["rps"] / floor["rps"],
            "",
            None,
            f"bench/stubbed_upstream.py: SDK + our middleware + tool + result, no request; server CPU "
            f"{stubbed['cpu_ms_per_call']:.2f} ms per call ({stubbed['cpu_ms_per_call'] / floor['cpu_ms_per_call']:.2f}× floor)",
        )
    )
    api = await api_call_ms()
    rows.append(
        Row(
            "throughput",
            "  list_databases' API call alone (in-process sandbox)",
            api,
            None,
            "ms",
            None,
            "",
            None,
            "ReduClient + emulator, hot loop in this process (logging off)",
        )
    )
    return rows


async def api_call_ms(n: int = 2000) -> float:
    """CPU-bound cost of the API call behind ours' ``list_databases`` (client + in-process sandbox), hot loop."""
    import logging
    import tempfile
    from pathlib import Path

    from redu_mcp.api import DATABASE
    from redu_mcp.sandbox import Sandbox
    from redu_mcp.server import Settings
    from redu_mcp.server.assembly import runtime_for

    logging.disable(logging.INFO)
    try:
        settings = Settings(sandbox=True, credentials_dir=Path(tempfile.mkdtemp()) / "credentials")
        client = runtime_for(settings, client=Sandbox().client()).client()
        for _ in range(n // 10):
            await client.list_instances(DATABASE)
        started = time.perf_counter()
        for _ in range(n):
            await client.list_instances(DATABASE)
        return (time.perf_counter() - started) * 1000 / n
    finally:
        logging.disable(logging.NOTSET)


def run(seconds: float = 5.0, clients: int = 50) -> list[Row]:
    import anyio

    return anyio.run(measure, seconds, clients)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    print_rows(run(args.seconds, args.clients))
