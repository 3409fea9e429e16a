"""The Redis data tools through the server, on a real redis-server started by the sandbox's engines.

* ``run_redis_command GET`` through an MCP client vs redis-py's ``GET`` on an open connection (the
  same instance, its URL read from the credentials file the server saved): median per call and the
  ratio; ``get_redis`` through the same client shows how much of it is the MCP round trip and the API
  look-up every data call makes (in-process sandbox here; the real API over HTTPS costs more);
* ``describe_redis`` on 1,000 and on 100,000 keys: the time follows the sample cap (20 keys, at most
  10 ``SCAN`` calls), not the key count.

The server runs as ``python -m redu_mcp --sandbox --engines`` over stdio (what a desktop client
sees) or, with ``--in-process``, in this process (``Client(server)``: no pipe, the figure closest to
the server's own cost). Calls alternate ours / redis-py / get_redis in rounds, so load on the box hits
all alike.

    uv run python bench/redis_tools.py [--samples 1500] [--in-process]     # ≈ 30 s
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from common import Row, median_ms, print_rows
from mcp import Client, StdioServerParameters

from redu_mcp.provisioning.credentials import read_env

CREATE = {"flavor_id": "1", "network_id": "net-private", "keypair_name": "default-key", "name": "bench-cache"}


def _server(stdio: bool, workdir: Path) -> Any:
    credentials = str(workdir / "credentials")
    if stdio:
        args = ["-m", "redu_mcp", "--sandbox", "--engines", "--provisioning-seconds", "0"]
        args += ["--credentials-dir", credentials, "--log-level", "WARNING"]
        env = {**os.environ, "XDG_STATE_HOME": str(workdir / "state"), "PYTHONPATH": os.pathsep.join(sys.path)}
        return StdioServerParameters(command=sys.executable, args=args, env=env)
    from redu_mcp.sandbox import Sandbox
    from redu_mcp.sandbox.engine_provisioner import EngineProvisioner
    from redu_mcp.server import Settings, build_server

    sandbox = Sandbox(provisioning_seconds=0, provisioner=EngineProvisioner())
    settings = Settings(sandbox=True, engines=True, credentials_dir=Path(credentials), poll_interval_seconds=0.1)
    return build_server(settings, client=sandbox.client(), on_close=sandbox.aclose)


async def _ok(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content or {}


async def _fill(bare: aioredis.Redis, keys: int) -> None:
    await bare.flushall()
    async with bare.pipeline(transaction=False) as pipe:
        for i in range(keys):
            pipe.set(f"key:{i}", i)
            if i % 10_000 == 9_999:
                await pipe.execute()
        await pipe.execute()


async def measure(stdio: bool, samples: int, rounds: int, describe_samples: int) -> list[Row]:
    workdir = Path(tempfile.mkdtemp(prefix="redu-bench-redis-"))
    async with Client(_server(stdio, workdir), read_timeout_seconds=120) as client:
        created = await _ok(client, "create_redis", CREATE)
        id = created["instance"]["id"]
        waited = await _ok(client, "wait_for_ready", {"kind": "redis", "id": id})
        assert waited["ready"], waited
        bare = aioredis.from_url(read_env(Path(created["credentials_file"]))["REDIS_URL"], protocol=3)
        await bare.set("k", "v")
        get = {"id": id, "command": "GET", "arguments": ["k"]}
        started = time.perf_counter()
        first = await _ok(client, "run_redis_command", get)
        first_ms = (time.perf_counter() - started) * 1000
        assert first["value"] == "v"

        async def ours() -> object:
            return await client.call_tool("run_redis_command", get)

        async def theirs() -> object:
            return await bare.get("k")

        async def look_up() -> object:
            return await client.call_tool("get_redis", {"id": id})

        timed: dict[str, list[float]] = {"ours": [], "theirs": [], "look_up": []}
        for _ in range(rounds):
            for name, call in (("ours", ours), ("theirs", theirs), ("look_up", look_up)):
                timed[name].append(await median_ms(call, max(1, samples // rounds)))
        get_ours, get_bare, get_look_up = (statistics.median(timed[name]) for name in ("ours", "theirs", "look_up"))

        describe_ms = {}
        for keys in (1_000, 100_000):
            await _fill(bare, keys)

            async def describe(keys: int = keys) -> object:
                described = await _ok(client, "describe_redis", {"id": id})
                assert len(described["keys"]) == 20 and {"db": 0, "keys": keys, "expires": 0} in described["databases"]
                return described

            describe_ms[keys] = await median_ms(describe, describe_samples)
        await bare.flushall()
        await bare.aclose()
        await _ok(client, "delete_redis", {"id": id, "confirm_name": CREATE["name"]})

    how = "stdio" if stdio else "in process"
    return [
        Row("redis_tools", f"GET through run_redis_command ({how})", round(get_ours, 3), round(get_bare, 3), "ms",
            ratio=round(get_ours / get_bare, 1),
            note=f"floor: redis-py GET on an open connection; median of {samples}, alternating"),
        Row("redis_tools", f"get_redis through the same client ({how})", round(get_look_up, 3), None, "ms",
            note=f"the MCP round trip + the API look-up every data call makes; GET adds {get_ours - get_look_up:.3f} ms"),
        Row("redis_tools", "first run_redis_command on an instance", round(first_ms, 1), None, "ms",
            note="connect, HELLO 3, the instance's COMMAND table"),
        *(
            Row("redis_tools", f"describe_redis (sample 20) on {keys:,} keys", round(ms, 2), None, "ms",
                note="bounded by the sample (at most 10 SCAN calls), not the key count")
            for keys, ms in describe_ms.items()
        ),
    ]  # fmt: skip


def run(samples: int = 600, stdio: bool = True) -> list[Row]:
    logging.disable(logging.INFO)  # in process, a line per API request would be part of what is measured
    try:
        return asyncio.run(measure(stdio, samples, rounds=5, describe_samples=max(5, samples // 50)))
    finally:
        logging.disable(logging.NOTSET)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in-process", action="store_true", help="serve in this process instead of over stdio")
    parser.add_argument("--samples", type=int, default=1_500)
    options = parser.parse_args()
    print_rows(run(options.samples, stdio=not options.in_process))
