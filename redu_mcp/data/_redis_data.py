"""``RedisData``: the one object the MCP face keeps for using Redis instances.

It owns the pools (per principal, instance and database) and each instance's command table, and
offers the three operations of the data tools. Every operation returns a typed outcome; none
raises for anything the instance or the network does (only for arguments no caller should pass).
"""

from __future__ import annotations

from collections.abc import Sequence

from redu_mcp.data._redis_check import check_redis
from redu_mcp.data._redis_commands import RedisAccess
from redu_mcp.data._redis_connection import RedisTls
from redu_mcp.data._redis_describe import RedisDescribeOutcome, describe_redis
from redu_mcp.data._redis_outcomes import RedisRunOutcome
from redu_mcp.data._redis_pools import RedisPools
from redu_mcp.data._redis_run import run_command
from redu_mcp.data._redis_values import RedisCaps
from redu_mcp.data._target import ConnectionReport, Target


class RedisData:
    """Runs data calls against Redis instances; ``aclose()`` when the server stops."""

    def __init__(
        self,
        *,
        tls: RedisTls | None = None,
        idle_seconds: float = 300.0,
        connections_per_pool: int = 4,
        connect_timeout: float = 10.0,
        command_timeout: float = 10.0,
    ) -> None:
        if connections_per_pool < 1 or min(idle_seconds, connect_timeout, command_timeout) <= 0:
            raise ValueError("pool size, idle time and timeouts must be positive")
        self.tls, self.connect_timeout = tls, connect_timeout
        #: How long one call may take when it names no timeout (connecting included).
        self.command_timeout = command_timeout
        self._pools = RedisPools(
            tls=tls, idle_seconds=idle_seconds, size=connections_per_pool, connect_timeout=connect_timeout
        )

    async def run(
        self,
        target: Target,
        command: str,
        arguments: Sequence[str | bytes] = (),
        *,
        access: RedisAccess,
        db: int = 0,
        timeout: float | None = None,
        caps: RedisCaps | None = None,
        confirmed: bool = False,
    ) -> RedisRunOutcome:
        """Run ``command arguments…`` on database ``db`` if the instance's flags allow it at ``access``.

        ``confirmed``: a FLUSHDB/FLUSHALL was confirmed by the face (it also checks ``--access full``).
        ``timeout``: for this call; by default ``command_timeout``.
        """
        return await run_command(
            self._pools,
            target,
            command,
            arguments,
            access=access,
            db=db,
            timeout=self.command_timeout if timeout is None else timeout,
            caps=caps or RedisCaps(),
            confirmed=confirmed,
        )

    async def describe(
        self, target: Target, *, db: int = 0, sample: int = 20, detail: bool = False, timeout: float | None = None
    ) -> RedisDescribeOutcome:
        """Version, mode, memory, eviction policy, keys per database and up to ``sample`` keys of ``db``."""
        timeout = self.command_timeout if timeout is None else timeout
        return await describe_redis(self._pools, target, db=db, sample=sample, detail=detail, timeout=timeout)

    async def check(self, target: Target, *, timeout: float = 10.0) -> ConnectionReport:
        """``check_connection``: TCP, TLS, AUTH, HELLO 3, version and PING, on a connection of its own."""
        return await check_redis(target, tls=self.tls, timeout=timeout, connect_timeout=self.connect_timeout)

    async def close_instance(self, principal: str | None, instance_id: int) -> None:
        """The instance was deleted (or its credentials replaced): close its connections, forget its table.
        ``principal`` None: every principal's (a deleted instance is gone for everyone)."""
        await self._pools.close_instance(principal, instance_id)

    async def aclose(self) -> None:
        await self._pools.aclose()
