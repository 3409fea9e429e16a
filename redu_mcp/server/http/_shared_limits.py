"""The HTTP books in Redis, counted across replicas (``REDU_MCP_REDIS_URL``).

``RedisLimits`` is a ``Limits`` whose decisions are taken in Redis, atomically (Lua, on Redis's own
clock, so replicas' clocks need not agree):

* per principal: open sessions (a sorted set scored by when each would expire idle) plus slots
  reserved by opening requests still in flight, against ``max_sessions_per_principal``; and a token
  bucket of ``new_sessions_per_minute``;
* per client address, and all addresses together: token buckets of key checks.

Each replica still keeps its own ``LocalLimits`` (which sessions it serves, requests in flight, idle
clocks): they mirror into Redis (a session's score is pushed forward whenever it is used), and they
decide alone whenever Redis cannot (then the limits count per replica, as with one replica, and
``SharedRedis`` logs it once a minute). Redis also records which replica serves each session, so a
request that a balancer sent to the wrong replica is told why (``session_elsewhere``).

``SharedKeyVerdicts`` shares pass-through key checks: a key verified (or refused) by one replica is
known to all for the rest of its time, at most as long as a replica trusts its own check; verdicts
are sealed with the state key. Principals, addresses, session ids and keys appear in Redis only as
keyed hashes (``Sealer.tag``).
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Final

from redu_mcp.server.http._limits import ALL_ADDRESSES_FACTOR, Limits, LocalLimits, Refusal, Reservation
from redu_mcp.server.http._settings import HttpLimits
from redu_mcp.sharing import SharedRedis, SharedStateUnavailable, bounded_json

#: Seconds a reserved slot is held at most (an opening request that never answers frees it then).
RESERVATION_SECONDS: Final = 60.0
#: Seconds between pushes of the sessions this replica has requests in flight for (a long stream).
REFRESH_EVERY: Final = 60.0

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""
_TAKE = """
local function take(key, per_minute, now)
  local rate = per_minute / 60.0
  local v = redis.call('HMGET', key, 'level', 'updated')
  local level = tonumber(v[1]) or per_minute
  local updated = tonumber(v[2]) or now
  level = math.min(per_minute, level + math.max(0, now - updated) * rate)
  local wait = 0
  if level >= 1 then level = level - 1 else wait = (1 - level) / rate end
  redis.call('HSET', key, 'level', tostring(level), 'updated', tostring(now))
  redis.call('EXPIRE', key, math.ceil(per_minute / rate) + 1)
  return wait
end
"""
#: KEYS: sessions, reserved, rate. ARGV: cap, per minute, token, idle seconds, reservation seconds.
RESERVE: Final = (
    _NOW
    + _TAKE
    + """
local cap, per_minute, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local idle, hold = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= cap then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = idle
  if first[2] then wait = tonumber(first[2]) - now end
  return {'sessions', tostring(wait)}
end
local wait = take(KEYS[3], per_minute, now)
if wait > 0 then return {'session_rate', tostring(wait)} end
redis.call('ZADD', KEYS[2], now + hold, token)
redis.call('EXPIRE', KEYS[2], math.ceil(hold) + 1)
return {'ok', '0'}
"""
)
#: KEYS: reserved, sessions, owner. ARGV: token ('' if none), session ('' if none), idle seconds, owner.
OPENED: Final = (
    _NOW
    + """
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
if ARGV[2] ~= '' then
  local idle = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], now + idle, ARGV[2])
  redis.call('EXPIRE', KEYS[2], math.ceil(idle) + 60)
  redis.call('SET', KEYS[3], ARGV[4], 'PX', math.ceil(idle * 1000) + 60000)
end
return 1
"""
)
#: KEYS: sessions, owner. ARGV: session, idle seconds.
TOUCH: Final = (
    _NOW
    + """
local idle = tonumber(ARGV[2])
if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + idle, ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], math.ceil(idle) + 60)
  redis.call('PEXPIRE', KEYS[2], math.ceil(idle * 1000) + 60000)
end
return 1
"""
)
#: KEYS: sessions, owner. ARGV: session, owner.
CLOSE: Final = """
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""
#: KEYS: this address's bucket, everyone's. ARGV: per minute for one, for all.
KEY_CHECK: Final = (
    _NOW
    + _TAKE
    + """
local wait = take(KEYS[1], tonumber(ARGV[1]), now)
if wait > 0 then return {'client', tostring(wait)} end
wait = take(KEYS[2], tonumber(ARGV[2]), now)
if wait > 0 then
  redis.call('HINCRBYFLOAT', KEYS[1], 'level', 1)
  return {'all', tostring(wait)}
end
return {'ok', '0'}
"""
)


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


@dataclass(frozen=True)
class SharedReservation(Reservation):
    """A reservation also held in Redis (``token``), or in this replica's books only (None)."""

    token: str | None = None


class RedisLimits(Limits):
    """``Limits`` counted across every replica that shares the Redis (see the module docstring)."""

    def __init__(
        self, shared: SharedRedis, limits: HttpLimits, replica: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.shared = shared
        self.limits = limits
        self.replica = replica
        self.local = LocalLimits(limits, clock)
        self.clock = clock
        self._refreshed = clock()

    # --- names ----------------------------------------------------------------------------------------------

    def _principal_keys(self, principal: str) -> tuple[str, str, str]:
        p = self.shared.sealer.tag(principal, 24)
        return (
            self.shared.key("sessions", p),
            self.shared.key("reserved", p),
            self.shared.key("session-rate", p),
        )

    def _owner(self, principal: str, session_id: str) -> tuple[str, str, str]:
        """(session tag, its owner key, the owner value this replica writes)."""
        tag = self.shared.sealer.tag(session_id, 32)
        return tag, self.shared.key("session-owner", tag), f"{self.replica}:{self.shared.sealer.tag(principal, 24)}"

    async def _script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        return await self.shared.run(lambda r: self.shared.script(source)(keys=keys, args=args, client=r))

    # --- sessions -------------------------------------------------------------------------------------------

    async def reserve_session(self, principal: str) -> Reservation | Refusal:
        await self._refresh_in_flight()
        sessions, reserved, rate = self._principal_keys(principal)
        token = secrets.token_hex(8)
        numbers = self.limits
        args = [
            numbers.max_sessions_per_principal,
            numbers.new_sessions_per_minute,
            token,
            numbers.session_idle_seconds,
            RESERVATION_SECONDS,
        ]
        try:
            reason, wait = await self._script(RESERVE, [sessions, reserved, rate], args)
        except (SharedStateUnavailable, ValueError, TypeError):
            return await self.local.reserve_session(principal)  # this replica's books alone
        if reason == "sessions":
            return Refusal("sessions", numbers.max_sessions_per_principal, _seconds(float(wait)))
        if reason == "session_rate":
            return Refusal("session_rate", numbers.new_sessions_per_minute, _seconds(float(wait)))
        local = await self.local.reserve_session(principal)  # its own books too (requests in flight, idle)
        if isinstance(local, Refusal):
            await self._opened(principal, token, None)
            return local
        return SharedReservation(local.principal, local.number, token)

    async def session_opened(self, reservation: Reservation, session_id: str | None) -> None:
        await self.local.session_opened(reservation, session_id)
        token = reservation.token if isinstance(reservation, SharedReservation) else None
        if token is not None or session_id is not None:
            await self._opened(reservation.principal, token, session_id)

    async def _opened(self, principal: str, token: str | None, session_id: str | None) -> None:
        sessions, reserved, _ = self._principal_keys(principal)
        tag, owner_key, owner = self._owner(principal, session_id or "")
        args = [token or "", tag if session_id else "", self.limits.session_idle_seconds, owner]
        with suppress(SharedStateUnavailable):  # the reservation expires by itself; the session is counted here only
            await self._script(OPENED, [reserved, sessions, owner_key], args)

    async def request_started(self, principal: str, session_id: str) -> None:
        await self.local.request_started(principal, session_id)
        await self._touch(principal, session_id)

    async def request_ended(self, principal: str, session_id: str) -> None:
        await self.local.request_ended(principal, session_id)
        await self._touch(principal, session_id)

    async def _touch(self, principal: str, session_id: str) -> None:
        if not self.local.owns(principal, session_id):
            return
        sessions, _, _ = self._principal_keys(principal)
        tag, owner_key, _ = self._owner(principal, session_id)
        with suppress(SharedStateUnavailable):
            await self._script(TOUCH, [sessions, owner_key], [tag, self.limits.session_idle_seconds])

    async def _refresh_in_flight(self) -> None:
        """Push forward the sessions with a request in flight here (a stream open longer than the idle time)."""
        now = self.clock()
        if now - self._refreshed < min(REFRESH_EVERY, self.limits.session_idle_seconds / 3):
            return
        self._refreshed = now
        for principal, session_id in self.local.in_flight_sessions():
            await self._touch(principal, session_id)

    async def session_closed(self, principal: str, session_id: str) -> None:
        ours = self.local.owns(principal, session_id)
        await self.local.session_closed(principal, session_id)
        if not ours:
            return  # another replica's session (or nobody's): its books are not ours to change
        sessions, _, _ = self._principal_keys(principal)
        tag, owner_key, owner = self._owner(principal, session_id)
        with suppress(SharedStateUnavailable):  # it expires from the shared books after the idle time
            await self._script(CLOSE, [sessions, owner_key], [tag, owner])

    async def session_elsewhere(self, principal: str, session_id: str) -> bool:
        if self.local.owns(principal, session_id):
            return False
        _, owner_key, mine = self._owner(principal, session_id)
        try:
            owner = await self.shared.run(lambda r: r.get(owner_key))
        except SharedStateUnavailable:
            return False
        if not isinstance(owner, str) or ":" not in owner:
            return False
        replica, _, owner_principal = owner.partition(":")
        return replica != self.replica and owner_principal == mine.partition(":")[2]

    def open_sessions(self, principal: str) -> int:
        """Sessions ``principal`` has open on this replica (for tests and diagnostics)."""
        return self.local.open_sessions(principal)

    # --- key checks -----------------------------------------------------------------------------------------

    async def allow_key_check(self, client: str) -> Refusal | None:
        per_client = self.limits.key_checks_per_minute
        keys = [self.shared.key("key-checks", self.shared.sealer.tag(client, 24)), self.shared.key("key-checks", "all")]
        try:
            reason, wait = await self._script(KEY_CHECK, keys, [per_client, per_client * ALL_ADDRESSES_FACTOR])
        except (SharedStateUnavailable, ValueError, TypeError):
            return await self.local.allow_key_check(client)
        if reason == "client":
            return Refusal("key_checks", per_client, _seconds(float(wait)))
        if reason == "all":
            return Refusal("key_checks", per_client * ALL_ADDRESSES_FACTOR, _seconds(float(wait)))
        return None


class SharedKeyVerdicts:
    """Pass-through key checks shared by replicas: that a key (named by a keyed hash of its SHA-256)
    belongs to a user id, or was refused. Each value is sealed for its Redis key, and trusted at most
    as long as this replica would have trusted its own check (``ok_seconds``, ``refused_seconds``),
    whatever expiry Redis holds."""

    MAX_CHARS: Final = 1024

    def __init__(self, shared: SharedRedis, ok_seconds: float, refused_seconds: float) -> None:
        self.shared = shared
        self.ok_seconds = ok_seconds
        self.refused_seconds = refused_seconds

    def _keys(self, key_digest: str) -> tuple[str, str]:
        tag = self.shared.sealer.tag(key_digest)
        return self.shared.key("key-ok", tag), self.shared.key("key-refused", tag)

    async def recall(self, key_digest: str) -> tuple[str | None, float] | None:
        """``(user id, seconds left)`` for a good key, ``(None, seconds left)`` for a refused one,
        None when no replica checked it lately (or Redis cannot say, or what it says is not sealed)."""
        ok, refused = self._keys(key_digest)

        async def look(r: Any) -> list[Any]:
            async with r.pipeline(transaction=False) as pipe:
                pipe.get(ok).pttl(ok).get(refused).pttl(refused)
                return list(await pipe.execute())

        try:
            good, ok_ttl, bad, refused_ttl = await self.shared.run(look)
        except (SharedStateUnavailable, ValueError):
            return None
        user = self._opened(ok, good, "user")
        if user and isinstance(ok_ttl, int) and ok_ttl > 0:
            return user, min(ok_ttl / 1000, self.ok_seconds)
        if self._opened(refused, bad, "refused") is True and isinstance(refused_ttl, int) and refused_ttl > 0:
            return None, min(refused_ttl / 1000, self.refused_seconds)
        return None

    def _opened(self, name: str, value: Any, field: str) -> Any:
        """The field of a verdict sealed for ``name``; None (and one warning) when it is not one."""
        if value is None:
            return None
        try:
            data = bounded_json(self.shared.sealer.unseal(name, value, self.MAX_CHARS), max_depth=1)
            found = data[field] if isinstance(data, dict) else None
        except (ValueError, KeyError) as exc:
            self.shared.discarded("key verdict", str(exc) or type(exc).__name__)
            return None
        if field == "user" and not (isinstance(found, str) and 0 < len(found) <= 256):
            self.shared.discarded("key verdict", "not a user id")
            return None
        return found

    async def remember(self, key_digest: str, user_id: str | None, seconds: float) -> None:
        """Tell the other replicas: a good key (``user_id``) or a refused one (None), for ``seconds``."""
        ok, refused = self._keys(key_digest)
        ms = max(1, round(seconds * 1000))
        seal = self.shared.sealer.seal

        async def store(r: Any) -> None:
            async with r.pipeline(transaction=True) as pipe:
                if user_id is None:
                    pipe.set(refused, seal(refused, json.dumps({"refused": True})), px=ms).delete(ok)
                else:
                    pipe.set(ok, seal(ok, json.dumps({"user": user_id})), px=ms).delete(refused)
                await pipe.execute()

        with suppress(SharedStateUnavailable):
            await self.shared.run(store)
