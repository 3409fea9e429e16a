"""The status board shared by replicas through Redis: one upstream poll per instance per interval,
however many replicas have waiters on it.

``RedisBoard`` is a ``Board``: within a replica its waiters share one read per interval (the
in-process ``StatusBoard``'s single flight); across replicas that read goes to Redis first:

1. a snapshot younger than ``max_age`` in Redis is everyone's answer;
2. otherwise the replica that wins a lease (``SET NX PX``, a random owner token) polls the API once,
   publishes the snapshot, and releases the lease (a Lua script that deletes only its own token);
   while it polls it extends the lease, so a slow poll is not duplicated, and a replica that dies
   holding it loses it within ``LEASE_SECONDS``;
3. the others check again every few milliseconds (backing off to 0.2 s) until the snapshot is
   there, or the lease is free to take.

Snapshots are immutable facts, stored as JSON: when (wall clock, so replicas agree), the instance as
its declared model dumps it (instances read back never carry a password), or the error as its data
fields (class, message, endpoint, status, code, retry_after), from which any replica rebuilds an
equivalent ``ReduError``; each waiter's wording is rendered afterwards, by the face. Keys carry the
deployment's namespace and the caller's identity (already a hash): callers never share a snapshot.

Whenever Redis fails, this replica polls on its own for that read (as one replica always did) and
``SharedRedis`` says so in the log; a wait never fails because of Redis.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final

import anyio

from redu_mcp.api import (
    ERROR_CLASSES,
    KINDS,
    Instance,
    ReduError,
    TransportError,
)
from redu_mcp.provisioning.waiting import Snapshot, StatusBoard, poll_once
from redu_mcp.sharing import SharedRedis, SharedStateUnavailable

log = logging.getLogger(__name__)

#: Seconds a poll lease lives unless its holder extends it (it does, every third of this, while polling).
LEASE_SECONDS: Final = 3.0
#: Seconds a published snapshot stays in Redis (only fresh ones are used: this just bounds memory).
SNAPSHOT_TTL: Final = 120.0
FIRST_CHECK: Final = 0.01  # seconds before a waiting replica looks for the lease holder's snapshot
MAX_CHECK: Final = 0.2  # … backing off to this

RELEASE: Final = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
EXTEND: Final = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
"""

#: The declared instance models a snapshot may hold (most specific first), by name.
_MODELS: Final[dict[str, type[Instance]]] = {kind.model.__name__: kind.model for kind in KINDS.values()} | {
    "Instance": Instance
}


def snapshot_json(snapshot: Snapshot, wall_at: float) -> str:
    """The snapshot as JSON facts: ``at`` (wall clock), and the declared instance or the error's fields."""
    data: dict[str, Any] = {"v": 1, "at": wall_at}
    if snapshot.instance is not None:
        instance = snapshot.instance
        name, model = next((n, m) for n, m in _MODELS.items() if isinstance(instance, m))
        data["model"] = name
        # Only the declared fields of the read model: a create response's password is not one of them.
        data["instance"] = instance.model_dump(mode="json", include=set(model.model_fields))
    if snapshot.error is not None:
        error = snapshot.error
        data["error"] = {
            "type": next(c.__name__ for c in type(error).__mro__ if c.__name__ in ERROR_CLASSES),
            "message": error.message,
            "endpoint": error.endpoint,
            "status": error.status,
            "code": error.code,
            "retry_after": error.retry_after,
            "maybe_applied": getattr(error, "maybe_applied", False),
        }
    return json.dumps(data, separators=(",", ":"))


def snapshot_from_json(text: str) -> tuple[float, Instance | None, ReduError | None] | None:
    """``(wall_at, instance, error)`` from ``snapshot_json``'s output; None if it is not one."""
    try:
        data = json.loads(text)
        wall_at = float(data["at"])
        if not math.isfinite(wall_at):
            return None
        instance: Instance | None = None
        error: ReduError | None = None
        if "instance" in data:
            instance = _MODELS[data["model"]].model_validate(data["instance"])
        if "error" in data:
            fields = data["error"]
            cls = ERROR_CLASSES[fields["type"]]
            message, endpoint = str(fields["message"]), str(fields.get("endpoint") or "")
            if issubclass(cls, TransportError):
                error = cls(message, endpoint=endpoint, maybe_applied=bool(fields.get("maybe_applied")))
            else:
                retry_after = fields.get("retry_after")
                error = cls(
                    message,
                    endpoint=endpoint,
                    status=None if fields.get("status") is None else int(fields["status"]),
                    code=None if fields.get("code") is None else str(fields["code"]),
                    retry_after=None if retry_after is None else float(retry_after),
                )
        if (instance is None) == (error is None):
            return None
        return wall_at, instance, error
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass
class RedisBoard:
    """A ``Board`` shared by every replica that uses the same Redis (and namespace)."""

    shared: SharedRedis
    local: StatusBoard = field(default_factory=StatusBoard)
    wall: Callable[[], float] = time.time
    lease_seconds: float = LEASE_SECONDS

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[Instance]], max_age: float) -> Snapshot:
        return await self.local.single_flight(key, lambda: self._shared_read(key, fetch, max_age), max_age)

    def join(self, key: Hashable) -> None:
        self.local.join(key)

    def leave(self, key: Hashable) -> None:
        self.local.leave(key)

    def _names(self, key: Hashable) -> tuple[str, str]:
        parts = [str(part) for part in key] if isinstance(key, tuple) else [str(key)]
        return self.shared.key("board", *parts), self.shared.key("lease", *parts)

    async def _shared_read(self, key: Hashable, fetch: Callable[[], Awaitable[Instance]], max_age: float) -> Snapshot:
        name, lease = self._names(key)
        try:
            return await self._through_redis(name, lease, fetch, max_age)
        except SharedStateUnavailable:
            return await poll_once(fetch, self.local.clock)  # on our own, as one replica does

    async def _through_redis(
        self, name: str, lease: str, fetch: Callable[[], Awaitable[Instance]], max_age: float
    ) -> Snapshot:
        found = await self._read(name)
        if found is not None and self.wall() - found[0] < max_age:
            return self._local(found)
        baseline = found[0] if found is not None else None  # when the stale snapshot was taken
        pause = FIRST_CHECK
        while True:
            token = secrets.token_hex(8)
            if await self._take(lease, token):
                return await self._poll_as_holder(name, lease, token, fetch, baseline)
            await anyio.sleep(pause)  # another replica is polling: its snapshot will be everyone's
            pause = min(MAX_CHECK, pause * 2)
            found = await self._read(name)
            if found is not None and found[0] != baseline:
                # Published since we looked: as with the in-process board, a waiter takes the
                # answer of the poll it waited for, however long that poll took.
                return self._local(found)

    async def _take(self, lease: str, token: str) -> bool:
        """Take the poll lease (``SET NX PX``) if nobody holds it."""
        return bool(await self.shared.run(lambda r: r.set(lease, token, nx=True, px=self._lease_ms())))

    async def _poll_as_holder(
        self,
        name: str,
        lease: str,
        token: str,
        fetch: Callable[[], Awaitable[Instance]],
        baseline: float | None,
    ) -> Snapshot:
        try:
            found = await self._read(name)  # published between our look and our lease?
            if found is not None and found[0] != baseline:
                return self._local(found)
            snapshot = await self._poll_keeping_lease(lease, token, fetch)
            with suppress(SharedStateUnavailable):  # polled already: never poll twice because Redis failed
                await self._publish(name, snapshot)
            return snapshot
        finally:
            with anyio.CancelScope(shield=True), suppress(SharedStateUnavailable):
                await self.shared.run(lambda r: self.shared.script(RELEASE)(keys=[lease], args=[token], client=r))

    async def _poll_keeping_lease(self, lease: str, token: str, fetch: Callable[[], Awaitable[Instance]]) -> Snapshot:
        """One poll, while our lease is extended (a slow API must not let a second replica poll)."""
        polled: list[Snapshot] = []
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_lease, lease, token)
                polled.append(await poll_once(fetch, self.local.clock))
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # the poll's own exception (a bug, not a ReduError): as is
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        return polled[0]

    async def _keep_lease(self, lease: str, token: str) -> None:
        with suppress(SharedStateUnavailable):
            while True:
                await anyio.sleep(self.lease_seconds / 3)
                await self.shared.run(
                    lambda r: self.shared.script(EXTEND)(keys=[lease], args=[token, self._lease_ms()], client=r)
                )

    def _lease_ms(self) -> int:
        return max(1, round(self.lease_seconds * 1000))

    async def _read(self, name: str) -> tuple[float, Instance | None, ReduError | None] | None:
        """The snapshot in Redis, if there is a readable one."""
        text = await self.shared.run(lambda r: r.get(name))
        if not text:
            return None
        parsed = snapshot_from_json(text)
        if parsed is None:
            log.debug("ignored an unreadable shared snapshot")
        return parsed

    def _local(self, found: tuple[float, Instance | None, ReduError | None]) -> Snapshot:
        """A snapshot from Redis on this process's clock, its age kept."""
        wall_at, instance, error = found
        age = max(0.0, self.wall() - wall_at)
        return Snapshot(at=self.local.clock() - age, instance=instance, error=error)

    async def _publish(self, name: str, snapshot: Snapshot) -> None:
        wall_at = self.wall() - max(0.0, self.local.clock() - snapshot.at)
        text = snapshot_json(snapshot, wall_at)
        await self.shared.run(lambda r: r.set(name, text, px=round(SNAPSHOT_TTL * 1000)))
