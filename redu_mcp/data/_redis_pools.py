"""Connections kept per (principal, instance, database), closed when idle or when the instance goes.

Each principal has its own connections and its own copy of the instance's command table: nothing
one user's calls left on a connection (there is nothing to leave: session commands are refused)
can reach another's. A connection serves one database for its whole life (``SELECT`` is refused),
so no call ever finds one on another database. A connection comes back to its pool only after a
complete exchange; after a timeout, a cancellation or a broken socket it is closed, so a late
reply can never be read as the next call's. New credentials for an instance (the password file
was replaced) retire its old connections.

Idle connections are closed by a sweeper task that runs only while connections exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from redu_mcp.data._redis_commands import CommandTable
from redu_mcp.data._redis_connection import RedisTls, connect, hello_refused
from redu_mcp.data._target import Target

log = logging.getLogger("redu_mcp.data")


async def _close(connection: Any) -> None:
    with contextlib.suppress(Exception):
        await connection.disconnect(nowait=True)


class _Pool:
    """Connections to one database, at most ``size`` at once; callers beyond that wait their turn."""

    def __init__(self, size: int) -> None:
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[Any, float]] = []  # (connection, when it came back)
        self.busy = 0
        self.closed = False  # the instance was deleted or its credentials changed: nothing comes back

    @property
    def empty(self) -> bool:
        return not self._idle and not self.busy

    async def take(self) -> Any | None:
        """Wait for a slot; an idle connection that is still sound, or None (the caller connects)."""
        await self._slots.acquire()
        self.busy += 1
        while self._idle:
            connection, _ = self._idle.pop()
            try:
                sound = not await connection.can_read()  # True: the server closed it, or sent unasked data
            except Exception:
                sound = False
            if sound:
                return connection
            await _close(connection)
        return None

    async def give_back(self, connection: Any | None, *, sound: bool) -> None:
        self.busy -= 1
        self._slots.release()
        if connection is None:
            return
        if sound and not self.closed:
            self._idle.append((connection, time.monotonic()))
        else:
            await _close(connection)

    async def close_idle(self, older_than: float) -> None:
        keep = [(c, since) for c, since in self._idle if since >= older_than]
        stale = [c for c, since in self._idle if since < older_than]
        self._idle = keep
        await asyncio.gather(*(_close(c) for c in stale))

    async def close(self) -> None:
        self.closed = True
        await self.close_idle(float("inf"))


class _Instance:
    """What one principal keeps for one instance: its pools, its command table, its protocol."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.protocol = 3  # until the server refuses HELLO 3
        self.table: CommandTable | None = None
        self.table_lock = asyncio.Lock()
        self.pools: dict[int, _Pool] = {}
        self.used = time.monotonic()

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self.pools.values()))


def _fingerprint(target: Target, tls: RedisTls | None) -> str:
    """Changes when anything the connections were made with changes (the password included)."""
    parts = (target.host, str(target.port), target.user or "", target.password.get_secret_value(), repr(tls))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class RedisPools:
    """Every pool of this process, by (principal, instance id) and then database."""

    def __init__(self, *, tls: RedisTls | None, idle_seconds: float, size: int, connect_timeout: float) -> None:
        self.tls, self.idle_seconds, self.size, self.connect_timeout = tls, idle_seconds, size, connect_timeout
        self._instances: dict[tuple[str, int], _Instance] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def instance(self, target: Target) -> _Instance:
        key = (target.principal, target.instance_id)
        fingerprint = _fingerprint(target, self.tls)
        found = self._instances.get(key)
        if found is not None and found.fingerprint != fingerprint:
            del self._instances[key]
            await found.close()
            found = None
        if found is None:
            found = self._instances[key] = _Instance(fingerprint)
        found.used = time.monotonic()
        self._start_sweeper()
        return found

    @contextlib.asynccontextmanager
    async def connection(self, target: Target, db: int) -> AsyncIterator[Any]:
        """A connection to ``db``; closed instead of pooled unless the block ends normally.

        A ``redis.ResponseError`` (an error reply) leaves the exchange complete: the connection goes back.
        """
        from redis.exceptions import ResponseError

        instance = await self.instance(target)
        pool = instance.pools.get(db)
        if pool is None:
            pool = instance.pools[db] = _Pool(self.size)
        connection = await pool.take()
        sound = False
        try:
            if connection is None:
                connection = await self._connect(target, instance, db)
            yield connection
            sound = True
        except ResponseError:
            sound = True
            raise
        finally:
            await pool.give_back(connection, sound=sound)

    async def _connect(self, target: Target, instance: _Instance, db: int) -> Any:
        try:
            return await connect(
                target, db=db, protocol=instance.protocol, tls=self.tls, connect_timeout=self.connect_timeout
            )
        except Exception as exc:
            if instance.protocol != 3 or not hello_refused(exc):
                raise
        instance.protocol = 2  # an instance before Redis 6: RESP2 from now on
        return await connect(target, db=db, protocol=2, tls=self.tls, connect_timeout=self.connect_timeout)

    async def close_instance(self, principal: str | None, instance_id: int) -> None:
        """Close what ``principal`` (None: every principal) keeps for the instance."""
        keys = [key for key in self._instances if key[1] == instance_id and principal in (None, key[0])]
        found = [self._instances.pop(key) for key in keys]
        await asyncio.gather(*(instance.close() for instance in found))

    async def close_idle(self) -> None:
        """Close connections idle for ``idle_seconds``; forget instances left with none."""
        now = time.monotonic()
        older_than = now - self.idle_seconds
        for key, instance in list(self._instances.items()):
            await asyncio.gather(*(pool.close_idle(older_than) for pool in instance.pools.values()))
            if all(pool.empty for pool in instance.pools.values()) and instance.used < older_than:
                del self._instances[key]  # its command table goes too: read afresh next time

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        instances, self._instances = list(self._instances.values()), {}
        await asyncio.gather(*(instance.close() for instance in instances))

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="redu-mcp redis idle sweeper")

    async def _sweep(self) -> None:
        while self._instances:
            await asyncio.sleep(max(self.idle_seconds / 2, 0.05))
            try:
                await self.close_idle()
            except Exception:  # never let the sweeper die with connections left
                log.debug("closing idle Redis connections failed", exc_info=True)
