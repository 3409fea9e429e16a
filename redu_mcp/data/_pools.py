"""Connection pools: one per (principal, kind, instance), small, closed on delete and after idling.

A pool is never shared across principals: two users of one instance id each have their own (and
their own password). A pool is replaced when its target changes (a new password in the credentials
file, a new address). Every connection is reset with ``DISCARD ALL`` when it comes back, so nothing a
statement left in the session (a setting, an advisory lock, a prepared statement) reaches the next
call.

psycopg_pool connects in the background and, when connecting fails, retries until the caller's wait
runs out, then says only "couldn't get a connection". Here each pool's connections record why they
failed, and a caller waiting for one is told at once (the pool is then closed: the next call starts
afresh, and nothing retries in the background, which for a wrong password would mean a stream of
failed logins).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from redu_mcp.data._connect import ConnectFailed, connection_kwargs, diagnose, explain_timeout
from redu_mcp.data._options import PostgresOptions
from redu_mcp.data._target import ConnectionFailure, Target

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

PoolKey = tuple[str, str, int]  # (principal, kind, instance id)


class _Failures:
    """Why this pool's last connection attempt failed, and an event for whoever waits on the pool."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.event = asyncio.Event()

    def record(self, error: BaseException) -> None:
        self.error = error
        self.event.set()


def _connection_class(failures: _Failures) -> type[AsyncConnection[Any]]:
    from psycopg import AsyncConnection, OperationalError

    class RecordingConnection(AsyncConnection[Any]):
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            if failures.error is not None:  # psycopg_pool retries at once: one failed login is enough
                raise OperationalError("not retried: the previous attempt failed")
            try:
                return await super().connect(conninfo, **kwargs)
            except Exception as exc:
                failures.record(exc)
                raise

    return RecordingConnection


async def _reset(conn: AsyncConnection[Any]) -> None:
    await conn.execute("DISCARD ALL")


@dataclass(eq=False)
class PoolEntry:
    target: Target
    pool: AsyncConnectionPool[AsyncConnection[Any]]
    failures: _Failures
    last_used: float
    in_use: int = 0
    #: Names of types psycopg does not know (enums, extension types), looked up once per pool.
    type_names: dict[int, str] = field(default_factory=dict)


class Pools:
    """Every pool this server holds. ``clock`` is injectable so idling can be tested."""

    def __init__(self, options: PostgresOptions, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self._clock = clock
        self._entries: dict[PoolKey, PoolEntry] = {}
        self._lock = asyncio.Lock()

    def keys(self) -> list[PoolKey]:
        return list(self._entries)

    @contextlib.asynccontextmanager
    async def connection(self, target: Target) -> AsyncIterator[tuple[AsyncConnection[Any], PoolEntry]]:
        """A pooled connection to ``target``, idle and in autocommit. Raises ``ConnectFailed``."""
        await self.close_idle()
        entry = await self._entry(target)
        entry.in_use += 1
        try:
            conn = await self._get(entry)
            try:
                yield conn, entry
            finally:
                await entry.pool.putconn(conn)
        finally:
            entry.in_use -= 1
            entry.last_used = self._clock()

    async def close_instance(self, kind: str, instance_id: int) -> int:
        """Close every pool to this instance (all principals'): it was deleted. How many closed."""
        async with self._lock:
            keys = [key for key in self._entries if key[1:] == (kind, instance_id)]
            entries = [self._entries.pop(key) for key in keys]
        await asyncio.gather(*(entry.pool.close() for entry in entries))
        return len(entries)

    async def close_idle(self) -> int:
        """Close the pools nobody used for ``pool_idle_seconds``. How many closed."""
        deadline = self._clock() - self.options.pool_idle_seconds
        async with self._lock:
            keys = [key for key, e in self._entries.items() if e.in_use == 0 and e.last_used <= deadline]
            entries = [self._entries.pop(key) for key in keys]
        await asyncio.gather(*(entry.pool.close() for entry in entries))
        return len(entries)

    async def aclose(self) -> None:
        async with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        await asyncio.gather(*(entry.pool.close() for entry in entries))

    async def _entry(self, target: Target) -> PoolEntry:
        from psycopg_pool import AsyncConnectionPool

        key = (target.principal, target.kind, target.instance_id)
        async with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.target == target:
                return entry
            if entry is not None:  # the password or the address changed: start afresh
                del self._entries[key]
                await entry.pool.close()
            failures = _Failures()
            pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
                connection_class=_connection_class(failures),
                kwargs=connection_kwargs(target, self.options),
                min_size=0,
                max_size=self.options.pool_max_size,
                open=False,
                reset=_reset,
                name=f"{target.kind}-{target.instance_id}",
                timeout=self.options.pool_wait_seconds,
                max_idle=self.options.pool_idle_seconds,
                reconnect_timeout=0,
            )
            await pool.open(wait=False)
            entry = PoolEntry(target, pool, failures, last_used=self._clock())
            self._entries[key] = entry
            return entry

    async def _get(self, entry: PoolEntry) -> AsyncConnection[Any]:
        from psycopg_pool import PoolTimeout

        wait = self.options.pool_wait_seconds + self.options.connect_timeout_seconds
        getting = asyncio.ensure_future(entry.pool.getconn(timeout=wait))
        failed = asyncio.ensure_future(entry.failures.event.wait())
        try:
            await asyncio.wait({getting, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            if not getting.done():
                getting.cancel()
                await asyncio.wait({getting})  # psycopg_pool takes back a connection handed over meanwhile
        if not getting.cancelled():
            try:
                return getting.result()
            except PoolTimeout:
                if entry.failures.error is None:
                    raise ConnectFailed(
                        ConnectionFailure(
                            "timeout",
                            f"no free connection within {wait:g} s: "
                            f"{self.options.pool_max_size} statements already running on this instance",
                        )
                    ) from None
        await self._drop(entry)
        error = entry.failures.error
        assert error is not None
        failure = diagnose(error, entry.target.password.get_secret_value())
        raise ConnectFailed(await explain_timeout(failure, entry.target, 3.0)) from None

    async def _drop(self, entry: PoolEntry) -> None:
        key = (entry.target.principal, entry.target.kind, entry.target.instance_id)
        async with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]
        await entry.pool.close()
