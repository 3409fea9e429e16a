"""Waiting for an instance to become ready, without a poll per waiter.

Every waiter reads the instance through ``StatusBoard``: a snapshot per instance that is refreshed
at most once per poll interval, by whichever waiter finds it stale first, while the others await
that same request (single flight). A thousand waits on one instance cost one GET per interval, and
when the last waiter is cancelled nothing keeps polling: there is no background task to stop.

Under faults: a poll that fails for a passing reason (no answer, a timeout, 429, 5xx, a body a proxy
mangled) is reported as progress and the wait polls again at its interval, or after the API's
``Retry-After``; ``MAX_TRANSIENT_FAILURES`` failures in a row end the wait with that error, before its
deadline. A failure that will not pass (401, 403, 404) ends it at once. Every poll is clipped to the
wait's deadline, so a poll that hangs is cut off there, and a cancelled wait stops its poll at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

import anyio

from redu_mcp import errors
from redu_mcp.models import ERROR, READY, Instance
from redu_mcp.retry import explain_retry_after, retry_after_of, time_left, within

log = logging.getLogger(__name__)

#: Consecutive transient poll failures after which a wait gives up before its deadline. Three: at the
#: documented 15 s interval the third failure comes at 30 s, inside the default 40 s wait.
MAX_TRANSIENT_FAILURES = 3


def is_transient(exc: errors.ReduError) -> bool:
    """A poll failure worth polling again after: no answer, rate limiting, any 5xx, an unreadable body.

    Broader than the retry policy (which leaves 500 and malformed bodies alone): polling again at the
    interval is the wait's normal cadence, not a retry storm, and a bad gateway page often passes."""
    transient = (errors.TransportError, errors.RateLimitedError, errors.ServerError, errors.ResponseFormatError)
    return isinstance(exc, transient)


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
    last_error: errors.ReduError | None = None  # the latest poll error, even if a later poll succeeded
    failures_in_a_row: int = 0  # consecutive failed polls at the end


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
    failures = 0
    last_error: errors.ReduError | None = None
    first = True

    def outcome(ready: bool = False, failed: bool = False, error: errors.ReduError | None = None) -> WaitOutcome:
        return WaitOutcome(instance, status, clock() - started, polls, ready, failed, error, last_error, failures)

    board.join(key)
    try:
        # Every poll's HTTP exchange is clipped to (just before) the deadline too, so that a poll that
        # hangs ends with an error the result can name, rather than being cut off without a word.
        with anyio.move_on_after(timeout), within(timeout - min(0.25, timeout / 10)):
            while True:
                left = time_left()
                if left is not None and left <= 0:
                    break  # no time for another poll: report what is known
                # The first read accepts only a very fresh snapshot: "poll at once" means now.
                snapshot = await board.read(key, fetch, max_age=min(interval, 0.5) if first else interval)
                first = False
                polls += 1
                elapsed = clock() - started
                pause = max(0.0, snapshot.at + interval - clock())
                if snapshot.error is not None:
                    exc = last_error = snapshot.error
                    if not is_transient(exc):
                        return outcome(error=exc)
                    failures += 1
                    advised = retry_after_of(exc)
                    if advised is not None and advised > timeout - elapsed:
                        return outcome(error=explain_retry_after(exc, timeout - elapsed))
                    if failures >= MAX_TRANSIENT_FAILURES:
                        await on_poll(elapsed, f"poll {polls} failed ({exc}); {failures} in a row: giving up")
                        return outcome(error=exc)
                    await on_poll(elapsed, f"poll {polls} failed ({exc}); polling again")
                    if advised is not None:
                        pause = max(pause, snapshot.at + advised - clock())
                else:
                    failures = 0
                    instance = snapshot.instance
                    assert instance is not None
                    status = instance.status
                    await on_poll(elapsed, f"status: {status} (poll {polls}, {elapsed:.0f}s)")
                    if status == READY:
                        return outcome(ready=True)
                    if status == ERROR:
                        return outcome(failed=True)
                # Sleep until the shared snapshot goes stale, so all waiters wake for the same poll.
                await anyio.sleep(pause)
        return outcome()
    finally:
        board.leave(key)
