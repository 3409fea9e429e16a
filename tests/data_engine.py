"""A real PostgreSQL for the data-layer tests (tests/test_data_postgres*.py), one per test module.

Started by the sandbox's engines: the login role is not a superuser and owns its database, as on a
managed instance. The fixture is synchronous (its own event loop to start, ``close_sync`` to stop)
so that every test keeps its own loop.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from redu_mcp.data import Target
from redu_mcp.sandbox.engines import Engines, EngineUnavailable, RunningEngine, find_binaries

PASSWORD = "pw-" + uuid.uuid4().hex  # unique, so a leak of it anywhere is unmistakable


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    database: str
    user: str
    version: str

    def target(self, principal: str = "local", instance_id: int = 1, **changes: Any) -> Target:
        base = Target(
            kind="database",
            instance_id=instance_id,
            principal=principal,
            host=self.host,
            port=self.port,
            password=SecretStr(PASSWORD),
            user=self.user,
            database=self.database,
        )
        return replace(base, **changes)

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        """A separate connection (not through the code under test), in autocommit, to look at state."""
        return await psycopg.AsyncConnection.connect(
            host=self.host, port=self.port, user=self.user, dbname=self.database, password=PASSWORD, autocommit=True
        )

    async def scalar(self, sql: str, *params: Any) -> Any:
        async with await self.connect() as conn:
            row = await (await conn.execute(sql.encode(), params or None)).fetchone()
            return row[0] if row else None

    async def run(self, sql: str) -> None:
        async with await self.connect() as conn:
            await conn.execute(sql.encode())


async def _start(manager: Engines) -> RunningEngine:
    engine = await manager.start_postgres(db_name="shop", db_user="shopper", password=PASSWORD)
    for _ in range(600):
        if await engine.is_ready():
            return engine
        if engine.failure() is not None:
            raise RuntimeError(engine.failure())
        await asyncio.sleep(0.1)
    raise RuntimeError("PostgreSQL did not become ready in 60 s")


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    try:
        find_binaries("postgres")
    except EngineUnavailable as exc:
        pytest.skip(f"engines missing: {exc}")
    manager = Engines()
    try:
        engine = asyncio.run(_start(manager))
        yield Postgres(engine.host, engine.port, "shop", "shopper", engine.actual_version)
    finally:
        manager.close_sync()


def unique(prefix: str = "t") -> str:
    """A table name no other test uses (tests share one database and may run in any order)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@contextmanager
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound, never listening, so nobody else takes it meanwhile)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


@contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts TCP connections (the kernel does) and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@contextmanager
def blackhole() -> Iterator[int]:
    """A port whose SYNs are dropped, like a firewall's: the accept queue is full and never drained.

    (10.255.255.1 is the usual unroutable address, but sandboxed networks often answer for it.)
    """
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):  # Linux keeps backlog + 1 connections queued; the rest wait for ever
                filler = socket.socket()
                filler.settimeout(0.3)
                fillers.append(filler)
                try:
                    filler.connect(("127.0.0.1", port))
                except OSError:
                    break
            yield port
        finally:
            for filler in fillers:
                filler.close()
