"""Per-call overhead: what the MCP layer adds to one ``get_database``.

Three round trips, measured in the same process, in alternating blocks:

* direct: an ``httpx2`` GET of ``/v1/databases/{id}`` on the sandbox served on a local port;
* ours: ``get_database`` through ``mcp.Client`` over stdio, server started with
  ``--api-url http://127.0.0.1:PORT/v1`` and ``REDU_API_KEY`` = the sandbox key (so each call makes
  that same GET);
* floor: the floor server's trivial ``echo`` tool through ``mcp.Client`` over stdio.

``ours − direct`` is what the MCP layer (both SDK halves, our tool code and the stdio hop) costs;
the target is that it stays within the floor's own whole round trip + 20%.

Calls are paced: each one starts ``PAUSE`` after the previous one ended, rotating direct → ours →
floor. On this (virtualised) machine a loopback round trip to a process that has been idle for a few
ms costs about twice one to a process that just answered (1.1 ms back to back, 2.3 ms after a 3 ms
pause), so back-to-back loops would flatter the direct GET (its peer is always hot) against ours
(whose upstream idles while the stdio leg runs). Real clients pause for seconds between calls.

    uv run python bench/per_call.py [--calls 300]
"""

from __future__ import annotations

import argparse
import os
import time

from common import FLOOR_STDIO, OURS_STDIO, SANDBOX_KEY, Row, child_env, median, percentile, print_rows, sandbox_on_port

TARGET = 1.2
WARMUP = 20
PAUSE = 0.02  # seconds between calls: every peer is equally "cold"


async def measure(calls: int) -> list[Row]:
    import anyio
    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    with sandbox_on_port(provisioning_seconds=0.1) as base, open(os.devnull, "w") as devnull:
        headers = {"x-api-key": SANDBOX_KEY}
        async with httpx2.AsyncClient(base_url=base + "/", headers=headers, timeout=10) as http:
            created = await http.post(
                "databases",
                json={
                    "name": "bench-per-call",
                    "flavor_id": "1",
                    "network_id": "net-private",
                    "keypair_name": "default-key",
                },
            )
            created.raise_for_status()
            db_id = created.json()["id"]

            ours_params = StdioServerParameters(
                command=OURS_STDIO[0],
                args=[*OURS_STDIO[1:], "--api-url", base],
                env=child_env(REDU_API_KEY=SANDBOX_KEY),
            )
            floor_params = StdioServerParameters(command=FLOOR_STDIO[0], args=FLOOR_STDIO[1:], env=child_env())
            async with (
                Client(stdio_client(ours_params, errlog=devnull)) as ours,
                Client(stdio_client(floor_params, errlog=devnull)) as floor,
            ):

                async def direct_call() -> None:
                    response = await http.get(f"databases/{db_id}")
                    response.raise_for_status()

                async def ours_call() -> None:
                    result = await ours.call_tool("get_database", {"id": db_id})
                    assert not result.is_error, result.content
                    assert result.structured_content["id"] == db_id

                async def floor_call() -> None:
                    result = await floor.call_tool("echo", {"text": "pong"})
                    assert not result.is_error, result.content

                samples: dict[str, list[float]] = {"direct": [], "ours": [], "floor": []}
                calls_by_name = {"direct": direct_call, "ours": ours_call, "floor": floor_call}
                for fn in calls_by_name.values():
                    for _ in range(WARMUP):
                        await fn()
                for _ in range(calls):
                    for name, fn in calls_by_name.items():
                        await anyio.sleep(PAUSE)
                        started = time.perf_counter()
                        await fn()
                        samples[name].append(time.perf_counter() - started)

    ms = {name: median(values) * 1000 for name, values in samples.items()}
    p99 = {name: percentile(values, 99) * 1000 for name, values in samples.items()}
    overhead = ms["ours"] - ms["direct"]
    ratio = overhead / ms["floor"]
    n = len(samples["ours"])
    return [
        Row(
            "per_call",
            f"get_database over stdio (median of {n})",
            ms["ours"],
            None,
            "ms",
            None,
            "",
            None,
            f"p99 {p99['ours']:.2f} ms",
        ),
        Row(
            "per_call",
            "direct httpx2 GET of the same URL",
            ms["direct"],
            None,
            "ms",
            None,
            "",
            None,
            f"p99 {p99['direct']:.2f} ms",
        ),
        Row(
            "per_call",
            "MCP layer: (ours − direct) vs floor echo",
            overhead,
            ms["floor"],
            "ms",
            ratio,
            f"≤ {TARGET}× floor",
            ratio <= TARGET,
            f"floor echo p99 {p99['floor']:.2f} ms",
            {"median_ms": ms, "p99_ms": p99},
        ),
    ]


def run(calls: int = 200) -> list[Row]:
    import anyio

    return anyio.run(measure, calls)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    print_rows(run(parser.parse_args().calls))
