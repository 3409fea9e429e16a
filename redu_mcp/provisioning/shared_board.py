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

Snapshots are immutable facts, stored as JSON sealed for their key (``Sealer``): a random publish
id, the instance as its declared model dumps it (instances read back never carry a password), or
the error as its data fields (class, message, endpoint, status, code, retry_after), from which any
replica rebuilds an equivalent ``ReduError``; each waiter's wording is rendered afterwards, by the
face. A snapshot's age comes from Redis's own clock (how much of its ``SNAPSHOT_TTL`` is left), never
from a time a writer put in it. A value that is not sealed for its key, too large, too deep, or not
the declared shape is discarded with one warning, and this replica polls the API itself. Keys carry
the deployment's namespace and the caller's identity (a keyed hash): callers never share a snapshot.
A snapshot from Redis that would end a wait (ready, failed, a lasting error) is never the answer
itself: this replica confirms it with one GET of its own (shared by its local waiters), so what a
wait returns, and what goes into a credentials file, is always the API's answer to this caller.

Whenever Redis fails, this replica polls on its own for that read (as one replica always did) and
``SharedRedis`` says so in the log; a wait never fails because of Redis.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Hashable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from redu_mcp.api import (
    ERROR_CLASSES,
    KINDS,
    Instance,
    ReduError,
    TransportError,
)
from redu_mcp.provisioning.waiting import Snapshot, StatusBoard, ends_wait, poll_once
from redu_mcp.sharing import SharedRedis, SharedStateUnavailable, Unsealed, bounded_json

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
#: The most characters a sealed snapshot may have in Redis (an instance is a few hundred).
MAX_SNAPSHOT_CHARS: Final = 16 * 1024
_TEXT_LIMIT: Final = 2000  # characters of an error's message or endpoint


class _SharedError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=64)
    message: str = Field(max_length=_TEXT_LIMIT)
    endpoint: str = Field(default="", max_length=_TEXT_LIMIT)
    status: int | None = Field(default=None, ge=100, le=599)
    code: str | None = Field(default=None, max_length=64)
    retry_after: float | None = Field(default=None, ge=0, le=86400)
    maybe_applied: bool = False


class _SharedSnapshot(BaseModel):
    """What a published snapshot must look like; anything else is discarded."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[2]
    n: str = Field(min_length=1, max_length=32)  # the publish id: tells one publication from the next
    model: str | None = Field(default=None, max_length=32)
    instance: dict[str, Any] | None = None
    error: _SharedError | None = None


@dataclass(frozen=True)
class Shared:
    """A snapshot as read from Redis: its publish id, age on Redis's clock, and the facts."""

    publication: str
    age: float
    instance: Instance | None
    error: ReduError | None


def snapshot_json(snapshot: Snapshot, publication: str) -> str:
    """The snapshot as JSON facts: a publish id, and the declared instance or the error's fields."""
    data: dict[str, Any] = {"v": 2, "n": publication}
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
            "message": error.message[:_TEXT_LIMIT],
            "endpoint": error.endpoint[:_TEXT_LIMIT],
            "status": error.status,
            "code": error.code,
            "retry_after": error.retry_after,
            "maybe_applied": getattr(error, "maybe_applied", False),
        }
    return json.dumps(data, separators=(",", ":"))


def snapshot_from_json(text: str) -> tuple[str, Instance | None, ReduError | None]:
    """``(publish id, instance, error)`` from ``snapshot_json``'s output; ``ValueError`` if it is not one."""
    try:
        data = _SharedSnapshot.model_validate(bounded_json(text))
    except ValidationError as exc:
        raise ValueError(f"not a snapshot ({exc.error_count()} problems)") from None
    instance: Instance | None = None
    error: ReduError | None = None
    if data.instance is not None:
        model = _MODELS.get(data.model or "")
        if model is None:
            raise ValueError("an unknown instance model")
        try:
            instance = model.model_validate(data.instance)
        except ValidationError:
            raise ValueError("not a declared instance") from None
    if data.error is not None:
        fields = data.error
        cls = ERROR_CLASSES.get(fields.type)
        if cls is None:
            raise ValueError("an unknown error class")
        if issubclass(cls, TransportError):
            error = cls(fields.message, endpoint=fields.endpoint, maybe_applied=fields.maybe_applied)
        else:
            error = cls(
                fields.message,
                endpoint=fields.endpoint,
                status=fields.status,
                code=fields.code,
                retry_after=fields.retry_after,
            )
    if (instance is None) == (error is None):
        raise ValueError("neither an instance nor an error, or both")
    return data.n, instance, error


@dataclass
class RedisBoard:
    """A ``Board`` shared by every replica that uses the same Redis (and namespace)."""

    shared: SharedRedis
    local: StatusBoard = field(default_factory=StatusBoard)
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
        if found is not None and found.age < max_age:
            return await self._answer(found, fetch)
        baseline = found.publication if found is not None else None  # the stale snapshot
        pause = FIRST_CHECK
        while True:
            token = secrets.token_hex(8)
            if await self._take(lease, token):
                return await self._poll_as_holder(name, lease, token, fetch, baseline)
            await anyio.sleep(pause)  # another replica is polling: its snapshot will be everyone's
            pause = min(MAX_CHECK, pause * 2)
            found = await self._read(name)
            if found is not None and found.publication != baseline:
                # Published since we looked: as with the in-process board, a waiter takes the
                # answer of the poll it waited for, however long that poll took.
                return await self._answer(found, fetch)

    async def _take(self, lease: str, token: str) -> bool:
        """Take the poll lease (``SET NX PX``) if nobody holds it."""
        return bool(await self.shared.run(lambda r: r.set(lease, token, nx=True, px=self._lease_ms())))

    async def _poll_as_holder(
        self,
        name: str,
        lease: str,
        token: str,
        fetch: Callable[[], Awaitable[Instance]],
        baseline: str | None,
    ) -> Snapshot:
        try:
            found = await self._read(name)  # published between our look and our lease?
            if found is not None and found.publication != baseline:
                return await self._answer(found, fetch)
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

    async def _read(self, name: str) -> Shared | None:
        """The snapshot in Redis, if there is one this deployment sealed for this key, of the declared shape."""

        async def look(r: Any) -> list[Any]:
            async with r.pipeline(transaction=False) as pipe:
                pipe.get(name).pttl(name)
                return list(await pipe.execute())

        value, ttl_ms = await self.shared.run(look)
        if value is None:
            return None
        ttl = SNAPSHOT_TTL * 1000
        try:
            if not isinstance(ttl_ms, int) or not 0 < ttl_ms <= ttl:
                raise Unsealed("its expiry is not one a replica sets")
            payload = self.shared.sealer.unseal(name, value, MAX_SNAPSHOT_CHARS)
            publication, instance, error = snapshot_from_json(payload)
        except ValueError as exc:  # Unsealed is one
            self.shared.discarded("status snapshot", str(exc))
            return None
        return Shared(publication, (ttl - ttl_ms) / 1000, instance, error)

    async def _answer(self, found: Shared, fetch: Callable[[], Awaitable[Instance]]) -> Snapshot:
        """A snapshot from Redis on this process's clock, its age kept; one that would end the wait
        is replaced by this caller's own poll (another replica's word decides nothing that lasts)."""
        snapshot = Snapshot(at=self.local.clock() - found.age, instance=found.instance, error=found.error)
        if ends_wait(snapshot):
            return await poll_once(fetch, self.local.clock)
        return snapshot

    async def _publish(self, name: str, snapshot: Snapshot) -> None:
        age = max(0.0, self.local.clock() - snapshot.at)
        if age >= SNAPSHOT_TTL:
            return
        text = self.shared.sealer.seal(name, snapshot_json(snapshot, secrets.token_hex(8)))
        # Its age is told by its expiry: a snapshot polled a while ago expires that much earlier.
        await self.shared.run(lambda r: r.set(name, text, px=max(1, round((SNAPSHOT_TTL - age) * 1000))))
