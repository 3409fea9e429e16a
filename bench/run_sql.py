"""``run_sql`` through the server against the same query on an open psycopg connection.

Starts ``redu-mcp --sandbox --engines --data write`` over stdio (the sandbox starts a real
PostgreSQL for the database the benchmark creates), then measures, median of N:

* a one-row ``SELECT`` through ``run_sql`` (MCP over stdio, the API look-up of the instance, the
  credentials file, the pooled connection, the read transaction, the fence) vs the same ``SELECT``
  on an open psycopg connection: the cost per call of going through the server;
* the first ``run_sql`` of a server (connect and log in included) vs the pooled calls after it;
* a 500-row, 8-column ``SELECT`` through ``run_sql`` vs psycopg's ``fetchall`` of the same rows:
  what typing, capping, JSON and the MCP result add per row.

    uv run python bench/run_sql.py [--samples 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from common import OURS_STDIO, Row, child_env, median_ms, print_rows

ONE_ROW = "SELECT id, item FROM orders WHERE id = $1"
WIDE = (
    "SELECT g AS id, 'name ' || g AS name, g * 1.25 AS price, now() AS at, (g % 2 = 0) AS even, "
    "ARRAY[g, g + 1] AS pair, jsonb_build_object('g', g) AS doc, md5(g::text)::uuid AS ref "
    "FROM generate_series(1, 500) g"
)


async def measure(samples: int) -> list[Row]:
    import tempfile

    import psycopg
    from mcp import Client, StdioServerParameters

    from redu_mcp.provisioning.credentials import read_env

    state = Path(tempfile.mkdtemp(prefix="redu-bench-"))
    args = [*OURS_STDIO[1:], "--sandbox", "--engines", "--data", "write", "--log-level", "WARNING"]
    params = StdioServerParameters(command=OURS_STDIO[0], args=args, env={**child_env(), "XDG_STATE_HOME": str(state)})
    async with Client(params, read_timeout_seconds=120) as client:
        options = (await client.call_tool("list_create_options", {})).structured_content
        create = {
            "name": "bench-db",
            "flavor_id": options["flavors"][0]["id"],
            "network_id": options["networks"][0]["id"],
            "keypair_name": options["keypairs"][0],
        }
        id = (await client.call_tool("create_database", create)).structured_content["instance"]["id"]
        ready: dict[str, Any] = {}
        while not ready.get("ready"):
            ready = (await client.call_tool("wait_for_ready", {"kind": "database", "id": id})).structured_content
        migration = "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'coffee');"
        await client.call_tool("apply_migration", {"id": id, "version": "1", "name": "orders", "sql": migration})

        async def one_row() -> None:
            result = await client.call_tool("run_sql", {"id": id, "query": ONE_ROW, "parameters": [1]})
            assert not result.is_error, result.content

        async def wide() -> None:
            result = await client.call_tool("run_sql", {"id": id, "query": WIDE, "max_rows": 500})
            assert not result.is_error and len(result.structured_content["rows"]) > 0, result.content

        env = read_env(Path(ready["credentials_file"]))
        async with await psycopg.AsyncConnection.connect(env["DATABASE_URL"], autocommit=True) as conn:

            async def direct_one() -> None:
                await (await conn.execute("SELECT id, item FROM orders WHERE id = %s", [1])).fetchall()

            async def direct_wide() -> None:
                await (await conn.execute(WIDE)).fetchall()

            for call in (one_row, direct_one, wide, direct_wide):
                await call()  # warm-up
            ours = await median_ms(one_row, samples)
            floor = await median_ms(direct_one, samples)
            ours_wide = await median_ms(wide, max(10, samples // 5))
            floor_wide = await median_ms(direct_wide, max(10, samples // 5))

        # A database this server never connected to: its first call connects and logs in; the
        # calls after it reuse the pool.
        first_calls, pooled_calls = [], []
        for n in range(3):
            other = (
                await client.call_tool("create_database", {**create, "name": f"bench-first-{n}"})
            ).structured_content
            other_id = other["instance"]["id"]
            waited: dict[str, Any] = {}
            while not waited.get("ready"):
                waited = (
                    await client.call_tool("wait_for_ready", {"kind": "database", "id": other_id})
                ).structured_content
            for calls in (first_calls, pooled_calls):
                started = time.perf_counter()
                result = await client.call_tool("run_sql", {"id": other_id, "query": "SELECT 1"})
                calls.append((time.perf_counter() - started) * 1000)
                assert not result.is_error, result.content
    return [
        Row("run_sql", "one-row SELECT through the server (stdio)", round(ours, 2), round(floor, 3), "ms",
            note=f"open psycopg connection: {floor:.3f} ms; the server adds {ours - floor:.2f} ms per call"),
        Row("run_sql", "first call of a server (connect, log in)", round(statistics.median(first_calls), 2),
            round(statistics.median(pooled_calls), 2), "ms", note="floor column: the next, pooled call"),
        Row("run_sql", "500 rows × 8 columns through the server", round(ours_wide, 2), round(floor_wide, 2), "ms",
            ratio=round(ours_wide / floor_wide, 1), note="floor: psycopg fetchall of the same rows"),
    ]  # fmt: skip


def run(samples: int = 100) -> list[Row]:
    import anyio

    return anyio.run(measure, samples)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    print_rows(run(parser.parse_args().samples))
