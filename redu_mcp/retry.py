"""When and how long to retry a request that failed for a passing reason, and how long anything may take.

Only idempotent requests (GET, DELETE) are retried here; a create is never re-sent blindly (see
``redu_mcp.instances`` for how an uncertain create is reconciled by name). The policy is tenacity's
capped exponential backoff with full jitter, overridden by the server's ``Retry-After`` (capped),
and bounded in total time so that a tool never outlives its own deadline.

Deadlines: ``within(seconds)`` sets a deadline for everything in its block (the sooner of it and any
enclosing one). The client clips every HTTP exchange to the time left, and a retry never starts
(and never sleeps) past it. When the API asks for a ``Retry-After`` longer than the time left, the
call fails at once, and the error says when to try again.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, TypeVar

from redu_mcp.errors import RateLimitedError, ReduError, ServerError, TransportError

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

#: How long one tool call may take, every request and retry included. Desktop clients cancel a call
#: at about 60 s; ``wait_for_ready`` has its own deadline (its ``timeout_seconds``).
TOOL_DEADLINE_SECONDS: Final = 45.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # including the first
    backoff_initial: float = 0.5  # seconds; full jitter draws from [0, min(cap, initial * 2**n)]
    backoff_max: float = 8.0
    retry_after_max: float = 20.0  # never wait longer than this on the server's say-so
    total_seconds: float = 30.0  # the whole call, attempts and waits included, ends within this

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(attempts=1)

    def backoff(self, failed_attempt: int) -> float:
        """Full jitter: uniform in [0, min(backoff_max, backoff_initial * 2**(failed_attempt - 1))]."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** max(0, failed_attempt - 1))
        return random.uniform(0, max(0.0, ceiling))

    def delay_after(self, exc: BaseException, failed_attempt: int) -> float:
        """How long to wait before the next attempt: the server's advice (capped), else backoff."""
        advised = retry_after_of(exc)
        if advised is not None:
            return min(advised, self.retry_after_max)
        return self.backoff(failed_attempt)

    @property
    def min_attempt_seconds(self) -> float:
        """A retry is not worth starting with less time than this left for its answer."""
        return min(1.0, self.total_seconds / 10)


# --- deadlines ---------------------------------------------------------------------------------------

_DEADLINE: ContextVar[float | None] = ContextVar("redu_mcp_deadline", default=None)


def time_left() -> float | None:
    """Seconds until the current deadline (may be negative), or None when there is none."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


@contextmanager
def within(seconds: float | None, *, restart: bool = False) -> Iterator[None]:
    """Everything in the block must end within ``seconds`` (or the enclosing deadline, if sooner).

    ``restart=True`` replaces the enclosing deadline instead: for work that starts after the call
    waited on a person (a confirmation), whose thinking time is no reason to cut the request short."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + max(0.0, seconds)
    enclosing = _DEADLINE.get()
    if enclosing is not None and enclosing < deadline and not restart:
        deadline = enclosing
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@contextmanager
def share_of_time_left(fraction: float) -> Iterator[None]:
    """Give the block at most ``fraction`` of the time left, keeping the rest for what follows."""
    left = time_left()
    with within(None if left is None else max(0.0, left) * fraction):
        yield


# --- what is worth retrying --------------------------------------------------------------------------


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, (RateLimitedError, ServerError)):
        return exc.status in RETRYABLE_STATUSES
    return False


def retry_after_of(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` advice carried by an error, in seconds, if any."""
    advised = getattr(exc, "retry_after", None)
    return float(advised) if isinstance(advised, (int, float)) and math.isfinite(advised) else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: either delta-seconds or an HTTP date. None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None  # "nan", "inf" are not advice
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always UTC, never local time
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def when_to_retry(seconds: float) -> str:
    """``"in 120 s (after 14:02:07 UTC)"``: for messages that tell a model or a human when to try again."""
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=math.ceil(seconds))
    return f"in {math.ceil(seconds)} s (after {at:%H:%M:%S} UTC)"


def explain_retry_after(exc: ReduError, left: float | None) -> ReduError:
    """Add to ``exc`` that the server's ``Retry-After`` lies beyond this call's time: it is not waited for."""
    advised = retry_after_of(exc)
    if advised is not None and "asks to wait" not in exc.message:
        budget = "the time this call has left" if left is None else f"the {max(0.0, left):.0f} s this call has left"
        exc.message += f" (the API asks to wait {math.ceil(advised)} s before retrying, more than {budget})"
        exc.hint = f"Try again {when_to_retry(advised)}."
    return exc


# --- the retry loop ------------------------------------------------------------------------------------


async def call_with_retries(
    policy: RetryPolicy,
    attempt: Callable[[int], Awaitable[T]],
    *,
    describe: str,
) -> T:
    """Run ``attempt(n)`` (n = 1, 2, …) until it succeeds, fails for good, or the policy is spent.

    The whole call (attempts and waits) ends within ``policy.total_seconds`` and any enclosing
    deadline: the client clips each attempt to the time left, and no wait starts that would end
    past it. A ``Retry-After`` longer than the time left fails the call at once, saying when to retry.
    """
    with within(policy.total_seconds):
        started = time.monotonic()
        # Most calls succeed at once: the first attempt runs without building the retry machinery.
        try:
            return await attempt(1)
        except ReduError as exc:
            if policy.attempts <= 1 or not is_retryable(exc):
                raise
            first_failure = exc

        import anyio
        import tenacity  # imported on first use: start-up does not need it

        why_stopped: list[str] = []

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return policy.delay_after(exc, state.attempt_number) if exc else 0.0

        def stop(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if state.attempt_number >= policy.attempts:
                why_stopped.append("attempts")
                return True
            left = time_left()
            if left is None:
                return False
            advised = retry_after_of(exc) if exc else None
            if advised is not None and advised > left:
                why_stopped.append("retry-after")
                return True
            if state.upcoming_sleep + policy.min_attempt_seconds > left:
                why_stopped.append("deadline")
                return True
            return False

        def give_up(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if not isinstance(exc, ReduError):  # only our errors are retried; anything else as it is
                raise exc if exc else AssertionError("no outcome to give up on")
            reason = why_stopped[-1] if why_stopped else "attempts"
            attempts = state.attempt_number
            log.info("giving up on %s after %d attempt(s) (%s): %s", describe, attempts, reason, type(exc).__name__)
            if reason == "retry-after":
                explain_retry_after(exc, time_left())
            elif attempts > 1:
                took = time.monotonic() - started
                exc.message += f" (gave up after {attempts} attempts in {took:.1f} s)"
            raise exc

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "retrying %s after attempt %d failed (%s); waiting %.2fs",
                describe,
                state.attempt_number,
                type(exc).__name__,
                state.upcoming_sleep,
            )

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(is_retryable),
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
            sleep=anyio.sleep,
            reraise=True,
        )
        async for try_ in retrying:
            with try_:
                number = try_.retry_state.attempt_number
                if number == 1:
                    raise first_failure  # replayed: tenacity decides on it as if it had run the attempt
                return await attempt(number)
        raise AssertionError("unreachable: give_up raises the last error")  # pragma: no cover


__all__ = [
    "RETRYABLE_STATUSES",
    "TOOL_DEADLINE_SECONDS",
    "RetryPolicy",
    "ReduError",
    "call_with_retries",
    "explain_retry_after",
    "is_retryable",
    "parse_retry_after",
    "retry_after_of",
    "share_of_time_left",
    "time_left",
    "when_to_retry",
    "within",
]
