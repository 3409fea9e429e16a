"""Waiting for an instance to become ready, without a poll per waiter.

Every waiter reads the instance through ``StatusBoard``: a snapshot per instance that is refreshed
at most once per poll interval, by whichever waiter finds it stale first, while the others await
that same request (single flight). A thousand waits on one instance cost one GET per interval, and
when the last waiter is cancelled nothing keeps polling: there is no background task to stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

import anyio

from redu_mcp import errors
from redu_mcp.models import ERROR, READY, Instance
from redu_mcp.retry import is_retryable

log = logging.getLogger(__name__)

#: Consecutive transient poll failures after which a wait gives up before its deadline.
MAX_TRANSIENT_FAILURES = 5


@dataclass
class Snapshot:
    """The outcome of one poll: the instance, or the error the poll raised."""

    at: float
    instance: Instance | None = None
    error: errors.ReduError | None = None


@dataclass
class _Entry:
    snapshot: Snapshot | None = None
    in_flight: anyio.Event | None = None
    waiters: int = 0
    polls: int = 0


@dataclass
class StatusBoard:
    clock: Callable[[], float] = time.monotonic
    _entries: dict[Hashable, _Entry] = field(default_factory=dict)

    def polls(self, key: Hashable) -> int:
        entry = self._entries.get(key)
        return entry.polls if entry else 0

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[Instance]], max_age: float) -> Snapshot:
        """The latest snapshot no older than ``max_age``, fetching it (once for all callers) if needed."""
        entry = self._entries.setdefault(key, _Entry())
        while True:
            snapshot = entry.snapshot
            if snapshot is not None and self.clock() - snapshot.at < max_age:
                return snapshot
            if entry.in_flight is not None:
                await entry.in_flight.wait()  # someone else is fetching: share their answer
                if entry.snapshot is not snapshot:
                    return entry.snapshot  # type: ignore[return-value]
                continue  # their fetch was cancelled: try again, maybe as the fetcher
            entry.in_flight = done = anyio.Event()
            try:
                entry.polls += 1
                try:
                    instance = await fetch()
                    entry.snapshot = Snapshot(at=self.clock(), instance=instance)
                except errors.ReduError as exc:
                    entry.snapshot = Snapshot(at=self.clock(), error=exc)
                return entry.snapshot
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


@dataclass
class WaitOutcome:
    instance: Instance | None
    status: str
    elapsed: float
    polls: int
    ready: bool
    failed: bool  # provisioning ended in status "error"
    error: errors.ReduError | None = None  # a poll error that ended the wait early


ProgressCallback = Callable[[float, str], Awaitable[None]]


async def wait_until_ready(
    board: StatusBoard,
    key: Hashable,
    fetch: Callable[[], Awaitable[Instance]],
    *,
    timeout: float,
    interval: float,
    on_poll: ProgressCallback,
    clock: Callable[[], float] = time.monotonic,
) -> WaitOutcome:
    """Poll (first at once, then every ``interval``) until ready, error, a lasting failure, or ``timeout``."""
    started = clock()
    status = "unknown"
    instance: Instance | None = None
    polls = 0
    transient_failures = 0
    first = True
    board.join(key)
    try:
        with anyio.move_on_after(timeout):
            while True:
                # The first read accepts only a very fresh snapshot: "poll at once" means now.
                snapshot = await board.read(key, fetch, max_age=min(interval, 0.5) if first else interval)
                first = False
                polls += 1
                elapsed = clock() - started
                if snapshot.error is not None:
                    exc = snapshot.error
                    if not is_retryable(exc):
                        return WaitOutcome(instance, status, elapsed, polls, False, False, exc)
                    transient_failures += 1
                    await on_poll(elapsed, f"poll {polls}: the API did not answer ({type(exc).__name__}); still trying")
                    if transient_failures >= MAX_TRANSIENT_FAILURES:
                        return WaitOutcome(instance, status, elapsed, polls, False, False, exc)
                else:
                    transient_failures = 0
                    instance = snapshot.instance
                    assert instance is not None
                    status = instance.status
                    await on_poll(elapsed, f"status: {status} (poll {polls}, {elapsed:.0f}s)")
                    if status == READY:
                        return WaitOutcome(instance, status, elapsed, polls, True, False)
                    if status == ERROR:
                        return WaitOutcome(instance, status, elapsed, polls, False, True)
                # Sleep until the shared snapshot goes stale, so all waiters wake for the same poll.
                await anyio.sleep(max(0.0, snapshot.at + interval - clock()))
        return WaitOutcome(instance, status, clock() - started, polls, False, False)
    finally:
        board.leave(key)
