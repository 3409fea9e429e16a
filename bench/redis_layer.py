"""The Redis data layer's own cost, on a real redis-server from the sandbox engines.

* ``GET`` through ``RedisData.run`` (classification, pooled connection, JSON mapping) vs a bare
  redis-py ``GET`` on an open connection (the ``Redis`` client, and the floor: one raw
  ``Connection``'s send and read): median per call and the ratios;
* the first call on a new ``RedisData`` (connect, ``HELLO 3``, the ``COMMAND`` table);
* ``LRANGE 0 -1`` on 100,000 elements (read whole, shown capped);
* ``describe`` on 1,000 and on 100,000 keys: the time follows the sample cap, not the key count.

    uv run python bench/redis_layer.py            # ≈ 30 s
    uv run python bench/redis_layer.py --quick    # smoke check, few samples
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import redis.asyncio as aioredis
from common import median_ms
from pydantic import SecretStr
from redis.asyncio.connection import Connection

from redu_mcp.data import RedisData, RedisDescription, RedisResult, Target
from redu_mcp.sandbox.engines import Engines

PASSWORD = "bench-redis-password"


async def _fill(client: aioredis.Redis, keys: int) -> None:
    await client.flushall()
    async with client.pipeline(transaction=False) as pipe:
        for i in range(keys):
            pipe.set(f"key:{i}", i)
            if i % 10_000 == 9_999:
                await pipe.execute()
        await pipe.execute()


async def main(quick: bool) -> None:
    samples = 200 if quick else 3_000
    manager = Engines()
    try:
        engine = await manager.start_redis(password=PASSWORD)
        while not await engine.is_ready():
            await asyncio.sleep(0.05)
        target = Target("redis", 1, "local", engine.host, engine.port, SecretStr(PASSWORD))
        bare = aioredis.Redis(host=engine.host, port=engine.port, password=PASSWORD, protocol=3)
        await bare.set("k", "v")

        layer = RedisData()
        started = time.perf_counter()
        first = await layer.run(target, "GET", ["k"], access="read")
        first_ms = (time.perf_counter() - started) * 1000
        assert isinstance(first, RedisResult) and first.value == "v"

        async def ours() -> object:
            return await layer.run(target, "GET", ["k"], access="read")

        async def theirs() -> object:
            return await bare.get("k")

        floor_connection = Connection(host=engine.host, port=engine.port, password=PASSWORD, protocol=3)
        await floor_connection.connect()

        async def floor() -> object:
            await floor_connection.send_command("GET", "k")
            return await floor_connection.read_response()

        ours_ms, bare_ms, floor_ms = [], [], []
        for _ in range(5):  # alternate, so load on the box hits all alike
            ours_ms.append(await median_ms(ours, samples // 5))
            bare_ms.append(await median_ms(theirs, samples // 5))
            floor_ms.append(await median_ms(floor, samples // 5))
        get_ours, get_bare, get_floor = (statistics.median(m) for m in (ours_ms, bare_ms, floor_ms))
        await floor_connection.disconnect()

        await bare.delete("many")
        for start in range(0, 100_000, 10_000):
            await bare.rpush("many", *range(start, start + 10_000))

        async def lrange() -> object:
            return await layer.run(target, "LRANGE", ["many", "0", "-1"], access="read")

        lrange_ms = await median_ms(lrange, 5 if quick else 20)

        describe_ms = {}
        for keys in (1_000, 100_000):
            await _fill(bare, keys)

            async def describe() -> object:
                outcome = await layer.describe(target)
                assert isinstance(outcome, RedisDescription) and outcome.sample and len(outcome.sample.keys) == 20
                return outcome

            describe_ms[keys] = await median_ms(describe, 5 if quick else 30)

        await layer.aclose()
        await bare.aclose()
    finally:
        await manager.aclose()

    print(f"redis-server {engine.actual_version}, {samples} GETs each way (median per call)")
    print(f"  GET via RedisData.run     {get_ours * 1000:8.1f} µs")
    print(f"  GET via redis-py Redis    {get_bare * 1000:8.1f} µs   ours/this {get_ours / get_bare:.2f}×")
    print(f"  GET via one Connection    {get_floor * 1000:8.1f} µs   ours/this {get_ours / get_floor:.2f}×")
    print(f"  first call (connect, HELLO 3, COMMAND table)  {first_ms:6.1f} ms")
    print(f"  LRANGE 0 -1 on 100,000 elements (100 shown)   {lrange_ms:6.1f} ms")
    for keys, ms in describe_ms.items():
        print(f"  describe (sample 20) on {keys:>7,} keys        {ms:6.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke check, not a measurement")
    asyncio.run(main(parser.parse_args().quick))
