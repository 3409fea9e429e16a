"""The data layer's own cost, below the MCP face: ``run_sql`` against a raw psycopg connection.

Starts a PostgreSQL from the sandbox's engines (loopback, no TLS) and measures, median of N:

* a one-row ``SELECT`` through ``run_sql`` on a warm pool vs the same query on an open psycopg
  connection (``execute`` + ``fetchall``): what the transaction around it (BEGIN READ ONLY + SET LOCAL,
  ROLLBACK, the DISCARD ALL reset), the classifier and the conversion add;
* the first call on a fresh ``Pools`` (connect and authenticate included);
* a 500-row, 8-column result through ``run_sql`` vs psycopg's ``fetchall`` of the same rows;
* the classifier alone on a mid-sized statement, and the first import of pglast and psycopg.

    uv run python bench/run_sql_layer.py [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import psycopg
from common import median_ms
from pydantic import SecretStr

from redu_mcp.data import Pools, PostgresOptions, SqlResult, Target, classify, run_sql
from redu_mcp.sandbox.engines import Engines

PASSWORD = "bench-password-0123456789"
WIDE = (
    "SELECT g AS id, 'name ' || g AS name, g * 1.25 AS price, now() AS at, (g % 2 = 0) AS even, "
    "ARRAY[g, g + 1] AS pair, jsonb_build_object('g', g) AS doc, md5(g::text)::uuid AS ref "
    "FROM generate_series(1, 500) g"
)


def _import_ms(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


async def main(samples: int) -> None:
    manager = Engines()
    try:
        engine = await manager.start_postgres(db_name="bench", db_user="bencher", password=PASSWORD)
        while not await engine.is_ready():
            await asyncio.sleep(0.1)
        target = Target(
            kind="database",
            instance_id=1,
            principal="local",
            host=engine.host,
            port=engine.port,
            password=SecretStr(PASSWORD),
            user="bencher",
            database="bench",
        )
        options = PostgresOptions(max_total_chars=500_000)  # 500 of these rows are ≈ 62,000 characters
        raw = await psycopg.AsyncConnection.connect(
            host=engine.host, port=engine.port, user="bencher", dbname="bench", password=PASSWORD, autocommit=True
        )
        pools = Pools(options)

        async def raw_one() -> object:
            return await (await raw.execute("SELECT 1")).fetchall()

        async def ours_one() -> object:
            result = await run_sql(pools, target, "SELECT 1", mode="read")
            assert isinstance(result, SqlResult)
            return result

        async def first_call() -> object:
            fresh = Pools(options)
            try:
                return await run_sql(fresh, target, "SELECT 1", mode="read")
            finally:
                await fresh.aclose()

        async def raw_wide() -> object:
            return await (await raw.execute(WIDE.encode())).fetchall()

        async def ours_wide() -> object:
            result = await run_sql(pools, target, WIDE, mode="read", max_rows=500)
            assert isinstance(result, SqlResult) and len(result.rows) == 500, type(result).__name__
            return result

        await ours_one()  # warm the pool and the imports
        rows = [
            ("one-row SELECT, open psycopg connection", await median_ms(raw_one, samples)),
            ("one-row SELECT, run_sql on a warm pool", await median_ms(ours_one, samples)),
            ("first run_sql on a fresh pool (connect + SCRAM)", await median_ms(first_call, max(10, samples // 10))),
            ("500 rows x 8 columns, psycopg fetchall", await median_ms(raw_wide, max(10, samples // 5))),
            ("500 rows x 8 columns, run_sql (JSON-safe values)", await median_ms(ours_wide, max(10, samples // 5))),
        ]
        statement = "WITH r AS (SELECT * FROM orders WHERE at > $1) SELECT r.id, c.email FROM r JOIN customers c ON c.id = r.customer_id ORDER BY r.at DESC LIMIT 20"
        started = time.perf_counter()
        for _ in range(samples):
            classify(statement)
        rows.append(("classify one statement (pglast)", (time.perf_counter() - started) * 1000 / samples))
        rows.append(("first import of pglast", _import_ms("pglast")))
        rows.append(("first import of psycopg + psycopg_pool", _import_ms("psycopg, psycopg_pool")))
        await raw.close()
        await pools.aclose()
    finally:
        await manager.aclose()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:8.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    asyncio.run(main(parser.parse_args().samples))
