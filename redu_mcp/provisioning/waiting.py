"""Waiting for an instance to become ready, without a poll per waiter.

Every waiter reads the instance through ``StatusBoard``: a snapshot per instance that is refreshed
at most once per poll interval, by whichever waiter finds it stale first, while the others await
that same request (single flight). A thousand waits on one instance cost one GET per interval, and
when the last waiter is cancelled nothing keeps polling: there is no background task to stop.
Snapshots are immutable: every waiter reads the same facts and draws its own conclusions.

Under faults: a poll that fails for a passing reason (no answer, a timeout, 429, 5xx, a body a proxy
mangled) is reported and the wait polls again at its interval, or after the API's ``Retry-After``;
``MAX_TRANSIENT_FAILURES`` failures in a row end the wait with that error, before its deadline. A
failure that will not pass (401, 403, 404) ends it at once. The wait ends by the caller's deadline
(``redu_mcp.api.within``); every poll is clipped to just before it, so a poll that hangs ends with
an error the outcome can name, and a cancelled wait stops its poll at once.

Several replicas share one board through Redis (``redu_mcp.provisioning.shared_board.RedisBoard``):
both are a ``Board``, and the wait loop does not know which one it reads. A board never ends a wait
on what another replica shared: a snapshot that would end it (``ends_wait``) is confirmed by a GET of
the caller's own, so the instance a wait returns (whose host goes into a credentials file) is always
the API's answer to this caller.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio

from redu_mcp.api import (
    ERROR,
    READY,
    Instance,
    RateLimitedError,
    ReduError,
    ResponseFormatError,
    RetryFacts,
    ServerError,
    TransportError,
    no_time_to_retry,
    retry_after_of,
    time_left,
    within,
)

log = logging.getLogger(__name__)

#: Consecutive transient poll failures after which a wait gives up before its deadline. Three: at the
#: documented 15 s interval the third failure comes at 30 s, inside a 40 s wait.
MAX_TRANSIENT_FAILURES = 3
#: Seconds kept before the deadline so that the last poll's outcome can still be reported.
DEADLINE_RESERVE = 0.25


def is_transient(exc: ReduError) -> bool:
    """A poll failure worth polling again after: no answer, rate limiting, any 5xx, an unreadable body.

    Broader than the retry policy (which leaves 500 and malformed bodies alone): polling again at the
    interval is the wait's normal cadence, not a retry storm, and a bad gateway page often passes."""
    return isinstance(exc, (TransportError, RateLimitedError, ServerError, ResponseFormatError))


@dataclass(frozen=True)
class Snapshot:
    """The outcome of one poll: the instance, or the error the poll raised."""

    at: float
    instance: Instance | None = None
    error: ReduError | None = None


def ends_wait(snapshot: Snapshot) -> bool:
    """Would this snapshot end a wait (ready, failed, or a failure that will not pass)?"""
    if snapshot.error is not None:
        return not is_transient(snapshot.error)
    return snapshot.instance is not None and snapshot.instance.status in (READY, ERROR)


@dataclass
class _Entry:
    snapshot: Snapshot | None = None
    in_flight: anyio.Event | None = None
    waiters: int = 0


class Board(Protocol):
    """Where waits read an instance's latest snapshot: at most one poll per instance per ``max_age``."""

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[Instance]], max_age: float) -> Snapshot:
        """The latest snapshot no older than ``max_age``, polling with ``fetch`` (once for all) if needed."""
        ...

    def join(self, key: Hashable) -> None:
        """A wait on ``key`` begins."""
        ...

    def leave(self, key: Hashable) -> None:
        """A wait on ``key`` ended (however it ended)."""
        ...


async def poll_once(fetch: Callable[[], Awaitable[Instance]], clock: Callable[[], float]) -> Snapshot:
    """One upstream poll as a snapshot: the instance, or the ``ReduError`` it raised."""
    try:
        return Snapshot(at=clock(), instance=await fetch())
    except ReduError as exc:
        return Snapshot(at=clock(), error=exc)


@dataclass
class StatusBoard:
    """The latest snapshot per instance, shared by every wait on it in this process."""

    clock: Callable[[], float] = time.monotonic
    _entries: dict[Hashable, _Entry] = field(default_factory=dict)

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[Instance]], max_age: float) -> Snapshot:
        """The latest snapshot no older than ``max_age``, fetching it (once for all callers) if needed."""
        return await self.single_flight(key, lambda: poll_once(fetch, self.clock), max_age)

    async def single_flight(
        self, key: Hashable, produce: Callable[[], Awaitable[Snapshot]], max_age: float
    ) -> Snapshot:
        """The latest snapshot no older than ``max_age``; else one caller runs ``produce`` and all share it.

        ``produce`` returns a snapshot stamped on ``clock`` (it may be older than now: one read
        from another replica); it raises nothing but cancellation."""
        entry = self._entries.setdefault(key, _Entry())
        while True:
            seen = entry.snapshot
            if seen is not None and self.clock() - seen.at < max_age:
                return seen
            if entry.in_flight is not None:
                await entry.in_flight.wait()  # someone else is fetching: share their answer
                latest = entry.snapshot
                if latest is not None and latest is not seen:
                    return latest
                continue  # their fetch was cancelled: try again, maybe as the fetcher
            entry.in_flight = done = anyio.Event()
            try:
                entry.snapshot = snapshot = await produce()
                return snapshot
            finally:
                entry.in_flight = None
                done.set()

    def join(self, key: Hashable) -> None:
        self._entries.setdefault(key, _Entry()).waiters += 1

    def leave(self, key: Hashable) -> None:
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.waiters -= 1
        if entry.waiters <= 0 and entry.in_flight is None:
            del self._entries[key]


@dataclass(frozen=True)
class Poll:
    """One poll as a waiter saw it (for progress reports)."""

    number: int
    elapsed: float
    instance: Instance | None = None  # set when the poll succeeded
    error: ReduError | None = None  # set when it failed
    failures_in_a_row: int = 0
    giving_up: bool = False  # this failure ends the wait


WaitEnd = Literal[
    "ready",  # status ready
    "failed",  # status error: provisioning failed
    "lasting_error",  # a poll failed in a way that will not pass (401, 403, 404...)
    "too_many_failures",  # MAX_TRANSIENT_FAILURES passing failures in a row
    "retry_after_too_long",  # the API asked to wait past the deadline
    "deadline",  # time is up, still not ready
]


@dataclass(frozen=True)
class WaitOutcome:
    end: WaitEnd
    instance: Instance | None  # the latest instance seen (None if no poll succeeded)
    elapsed: float
    polls: int
    error: ReduError | None = None  # the error that ended the wait
    last_error: ReduError | None = None  # the latest poll error, even if a later poll succeeded
    failures_in_a_row: int = 0

    @property
    def ready(self) -> bool:
        return self.end == "ready"

    @property
    def status(self) -> str:
        return self.instance.status if self.instance is not None else "unknown"


async def wait_until_ready(
    board: Board,
    key: Hashable,
    fetch: Callable[[], Awaitable[Instance]],
    *,
    interval: float,
    on_poll: Callable[[Poll], Awaitable[None]],
    clock: Callable[[], float] = time.monotonic,
) -> WaitOutcome:
    """Poll (first at once, then every ``interval``) until ready, error, a lasting failure, or the deadline."""
    started = clock()
    total = time_left()
    instance: Instance | None = None
    polls = failures = 0
    last_error: ReduError | None = None

    def ended(end: WaitEnd, error: ReduError | None = None) -> WaitOutcome:
        return WaitOutcome(end, instance, clock() - started, polls, error, last_error, failures)

    reserve = 0.0 if total is None else min(DEADLINE_RESERVE, max(0.0, total) / 10)
    board.join(key)
    try:
        with (
            anyio.move_on_after(math.inf if total is None else total),
            within(None if total is None else total - reserve),
        ):
            while True:
                left = time_left()
                if left is not None and left <= 0:
                    break  # no time for another poll: report what is known
                # The first read accepts only a very fresh snapshot: "poll at once" means now.
                snapshot = await board.read(key, fetch, max_age=min(interval, 0.5) if polls == 0 else interval)
                polls += 1
                elapsed = clock() - started
                pause = max(0.0, snapshot.at + interval - clock())
                if snapshot.error is not None:
                    exc = last_error = snapshot.error
                    if not is_transient(exc):
                        return ended("lasting_error", exc)
                    failures += 1
                    if no_time_to_retry(exc) == "retry_after":
                        too_long = exc.after_retrying(
                            RetryFacts(failures, clock() - started, "retry_after", time_left())
                        )
                        return ended("retry_after_too_long", too_long)
                    advised = retry_after_of(exc)
                    giving_up = failures >= MAX_TRANSIENT_FAILURES
                    await on_poll(Poll(polls, elapsed, error=exc, failures_in_a_row=failures, giving_up=giving_up))
                    if giving_up:
                        return ended("too_many_failures", exc)
                    if advised is not None:
                        pause = max(pause, snapshot.at + advised - clock())
                else:
                    failures = 0
                    instance = snapshot.instance
                    assert instance is not None  # a snapshot holds an instance or an error
                    await on_poll(Poll(polls, elapsed, instance=instance))
                    if instance.status == READY:
                        return ended("ready")
                    if instance.status == ERROR:
                        return ended("failed")
                # Sleep until the shared snapshot goes stale, so all waiters wake for the same poll.
                await anyio.sleep(pause)
        return ended("deadline")
    finally:
        board.leave(key)
