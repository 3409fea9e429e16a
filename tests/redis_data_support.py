"""A real redis-server for the Redis data-layer tests, and a raw client to look at it from outside."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from pydantic import SecretStr

from redu_mcp.data import Target
from redu_mcp.sandbox.engines import Engines
from tests.helpers import missing_engines

#: The instance's password: spaces, quotes, a backslash, non-ASCII (never printed by a failing assert).
PASSWORD = "rédis pa'ss\"w\\ord-7Qx"

needs_redis_server = missing_engines()


@dataclass(frozen=True)
class RunningRedis:
    host: str
    port: int

    def target(self, *, principal: str = "local", instance_id: int = 7, password: str = PASSWORD) -> Target:
        return Target(
            kind="redis",
            instance_id=instance_id,
            principal=principal,
            host=self.host,
            port=self.port,
            password=SecretStr(password),
        )

    def raw(self, db: int = 0) -> redis.Redis:
        """A plain redis-py client with the password: how the tests see the instance from outside."""
        return redis.Redis(host=self.host, port=self.port, password=PASSWORD, db=db, protocol=2)


@contextmanager
def started_redis() -> Iterator[RunningRedis]:
    """One redis-server from the sandbox engines, ready; stopped afterwards."""
    manager = Engines()

    async def start() -> RunningRedis:
        engine = await manager.start_redis(password=PASSWORD)
        for _ in range(600):
            if await engine.is_ready():
                return RunningRedis(engine.host, engine.port)
            assert engine.failure() is None, engine.failure()
            await asyncio.sleep(0.05)
        raise AssertionError("redis-server never became ready")

    try:
        yield asyncio.run(start())
    finally:
        manager.close_sync()


def our_connections(raw: redis.Redis) -> list[dict]:
    """CLIENT LIST entries other than the raw client's own."""
    me = raw.client_id()
    return [client for client in raw.client_list() if int(client["id"]) != me]


def assert_secret_absent(text: str, where: str) -> None:
    """Like ``assert PASSWORD not in text``, but a failure does not print the password."""
    leaked = PASSWORD in text
    assert not leaked, f"the password leaked into {where}"
