"""How much of the HTTP server one caller may take: sessions per principal, new sessions per minute,
key checks per client address. The numbers are ``HttpLimits`` (settings); the accounting is here.

``Limits`` is the interface the HTTP layer uses (all ``async``); ``LocalLimits`` keeps the books in
this process, ``redu_mcp.server.http._shared_limits.RedisLimits`` in Redis, for several replicas.

Sessions are learnt from the outside, at the HTTP boundary (the SDK has no public session hooks):
a request without ``Mcp-Session-Id`` that the SDK answers with one opened a session; a ``DELETE``
answered 2xx, or a 404 for the id, closed it; and a session with no request in flight for
``session_idle_seconds`` is gone, since the SDK closes it by exactly that rule (its idle timeout is
given the same number). A slot is reserved *before* the opening request reaches the SDK, so a burst
of concurrent ``initialize`` requests cannot overshoot the cap.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from redu_mcp.server.http._settings import HttpLimits

#: How many client addresses' key-check budgets together may spend per minute, as a multiple of one
#: address's budget: a ceiling on what pass-through verification can cost the API however many
#: addresses (or spoofed ``X-Forwarded-For`` values from a trusted proxy) a caller has.
ALL_ADDRESSES_FACTOR = 10


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away, and after how many seconds trying again makes sense."""

    reason: Literal["sessions", "session_rate", "key_checks"]
    limit: int
    retry_after: int  # whole seconds, at least 1


@dataclass(frozen=True)
class Reservation:
    """A session slot held for a principal while its opening request is being answered."""

    principal: str
    number: int


class Limits(ABC):
    """The books the HTTP layer keeps. Every method is a short, non-blocking decision."""

    @abstractmethod
    async def reserve_session(self, principal: str) -> Reservation | Refusal:
        """Hold a slot for a session ``principal`` is about to open, or say why not."""

    @abstractmethod
    async def session_opened(self, reservation: Reservation, session_id: str | None) -> None:
        """The opening request was answered: with a new session (its id), or without (None: release)."""

    @abstractmethod
    async def request_started(self, principal: str, session_id: str) -> None:
        """A request for a known session is being served (its idle clock stops)."""

    @abstractmethod
    async def request_ended(self, principal: str, session_id: str) -> None:
        """A request for a session ended (when none is left in flight, its idle clock starts)."""

    @abstractmethod
    async def session_closed(self, principal: str, session_id: str) -> None:
        """The session ended (DELETE, or the SDK no longer knows it). Ignored unless ``principal`` owns it."""

    @abstractmethod
    async def allow_key_check(self, client: str) -> Refusal | None:
        """May a request from ``client`` (an address) cost one upstream key check now?"""

    async def session_elsewhere(self, principal: str, session_id: str) -> bool:
        """Is this session of ``principal`` served by another replica (so a request for it came to the
        wrong one)? Only books shared by replicas can tell; one replica's never can."""
        return False


class TokenBucket:
    """``rate`` tokens per minute, at most ``rate`` saved up: a burst of ``rate``, then a steady rate."""

    __slots__ = ("capacity", "level", "per_second", "updated")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = now

    def take(self, now: float) -> float:
        """0 if a token was taken; otherwise the seconds until one will be there."""
        self._refill(now)
        if self.level >= 1:
            self.level -= 1
            return 0.0
        return (1 - self.level) / self.per_second

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.level >= self.capacity


@dataclass
class _Session:
    principal: str
    in_flight: int = 0
    idle_since: float = 0.0


@dataclass
class _Principal:
    sessions: set[str] = field(default_factory=set)
    reserved: set[int] = field(default_factory=set)
    rate: TokenBucket | None = None


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


class LocalLimits(Limits):
    """``Limits`` kept in this process's memory (one replica). Bounded: sessions by the caps, buckets
    by a sweep that drops full ones."""

    SWEEP_EVERY = 30.0  # seconds between sweeps of idle sessions and full buckets of everyone

    def __init__(self, limits: HttpLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock  # must be the clock of the SDK's idle timeout (anyio's: monotonic)
        self._principals: dict[str, _Principal] = {}
        self._sessions: dict[str, _Session] = {}
        self._checks: dict[str, TokenBucket] = {}
        self._all_checks: TokenBucket | None = None
        self._numbers = 0
        self._swept = clock()

    # --- sessions -------------------------------------------------------------------------------------------

    async def reserve_session(self, principal: str) -> Reservation | Refusal:
        now = self.clock()
        self._sweep(now)
        books = self._principals.setdefault(principal, _Principal())
        self._expire_idle(books, now)
        cap = self.limits.max_sessions_per_principal
        if len(books.sessions) + len(books.reserved) >= cap:
            return Refusal("sessions", cap, self._next_free(books, now))
        rate = self.limits.new_sessions_per_minute
        if books.rate is None:
            books.rate = TokenBucket(rate, now)
        wait = books.rate.take(now)
        if wait > 0:
            return Refusal("session_rate", rate, _seconds(wait))
        self._numbers += 1
        books.reserved.add(self._numbers)
        return Reservation(principal, self._numbers)

    async def session_opened(self, reservation: Reservation, session_id: str | None) -> None:
        books = self._principals.get(reservation.principal)
        if books is None or reservation.number not in books.reserved:
            return
        books.reserved.discard(reservation.number)
        if session_id is not None and session_id not in self._sessions:
            books.sessions.add(session_id)
            # The opening request is still in flight (its SSE stream is being sent): it counts.
            self._sessions[session_id] = _Session(reservation.principal, in_flight=1)

    async def request_started(self, principal: str, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None and session.principal == principal:
            session.in_flight += 1

    async def request_ended(self, principal: str, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None and session.principal == principal and session.in_flight > 0:
            session.in_flight -= 1
            if session.in_flight == 0:
                session.idle_since = self.clock()

    async def session_closed(self, principal: str, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is None or session.principal != principal:
            return  # someone else's id (or a made-up one): nothing of theirs to close
        del self._sessions[session_id]
        books = self._principals.get(principal)
        if books is not None:
            books.sessions.discard(session_id)

    def owns(self, principal: str, session_id: str) -> bool:
        """Is ``session_id`` a session of ``principal`` that this process serves (and not yet idle-expired)?"""
        session = self._sessions.get(session_id)
        return session is not None and session.principal == principal and not self._expired(session, self.clock())

    def in_flight_sessions(self) -> list[tuple[str, str]]:
        """``(principal, session id)`` of every session with a request in flight now."""
        return [(s.principal, sid) for sid, s in self._sessions.items() if s.in_flight > 0]

    def _expired(self, session: _Session, now: float) -> bool:
        return session.in_flight == 0 and now - session.idle_since >= self.limits.session_idle_seconds

    def _expire_idle(self, books: _Principal, now: float) -> None:
        for session_id in [s for s in books.sessions if self._expired(self._sessions[s], now)]:
            books.sessions.discard(session_id)
            del self._sessions[session_id]

    def _next_free(self, books: _Principal, now: float) -> int:
        """Seconds until this principal's first idle session expires (the idle timeout if none is idle)."""
        idle = self.limits.session_idle_seconds
        waits = [
            idle - (now - self._sessions[s].idle_since) for s in books.sessions if self._sessions[s].in_flight == 0
        ]
        return _seconds(min(waits, default=idle))

    def _sweep(self, now: float) -> None:
        if now - self._swept < self.SWEEP_EVERY:
            return
        self._swept = now
        for principal, books in list(self._principals.items()):
            self._expire_idle(books, now)
            if not books.sessions and not books.reserved and (books.rate is None or books.rate.full(now)):
                del self._principals[principal]
        for client, bucket in list(self._checks.items()):
            if bucket.full(now):
                del self._checks[client]

    def open_sessions(self, principal: str) -> int:
        """Sessions ``principal`` has open now (for tests and diagnostics)."""
        books = self._principals.get(principal)
        if books is None:
            return 0
        self._expire_idle(books, self.clock())
        return len(books.sessions)

    # --- key checks -----------------------------------------------------------------------------------------

    async def allow_key_check(self, client: str) -> Refusal | None:
        now = self.clock()
        self._sweep(now)
        per_client = self.limits.key_checks_per_minute
        bucket = self._checks.get(client)
        if bucket is None:
            bucket = self._checks[client] = TokenBucket(per_client, now)
        if self._all_checks is None:
            self._all_checks = TokenBucket(per_client * ALL_ADDRESSES_FACTOR, now)
        wait = bucket.take(now)
        if wait > 0:
            return Refusal("key_checks", per_client, _seconds(wait))
        wait = self._all_checks.take(now)
        if wait > 0:
            bucket.level += 1  # not spent: the refusal is everyone's, not this address's
            return Refusal("key_checks", per_client * ALL_ADDRESSES_FACTOR, _seconds(wait))
        return None
