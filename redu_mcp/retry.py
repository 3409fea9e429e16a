"""When and how long to retry a request that failed for a passing reason.

Only idempotent requests (GET, DELETE) are retried here; a create is never re-sent blindly (see
``redu_mcp.instances`` for how an uncertain create is reconciled by name). The policy is tenacity's
capped exponential backoff with full jitter, overridden by the server's ``Retry-After`` (capped),
and bounded in total time so that a tool never outlives its own deadline.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redu_mcp.errors import RateLimitedError, ReduError, ServerError, TransportError

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # including the first
    backoff_initial: float = 0.5  # seconds; full jitter draws from [0, min(cap, initial * 2**n)]
    backoff_max: float = 8.0
    retry_after_max: float = 20.0  # never wait longer than this on the server's say-so
    total_seconds: float = 30.0  # no retry starts if it would end past this budget

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(attempts=1)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, (RateLimitedError, ServerError)):
        return exc.status in RETRYABLE_STATUSES
    return False


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


async def call_with_retries(
    policy: RetryPolicy,
    attempt: Callable[[int], Awaitable[T]],
    *,
    describe: str,
) -> T:
    """Run ``attempt(n)`` (n = 1, 2, …) until it succeeds, fails for good, or the policy is spent."""
    if policy.attempts <= 1:
        return await attempt(1)

    import tenacity  # imported on first use: start-up does not need it

    jitter = tenacity.wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        advised = getattr(exc, "retry_after", None)
        if advised is not None:
            return min(float(advised), policy.retry_after_max)
        return jitter(state)

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
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_before_delay(policy.total_seconds),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    async for try_ in retrying:
        with try_:
            return await attempt(try_.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


__all__ = ["RetryPolicy", "call_with_retries", "is_retryable", "parse_retry_after", "ReduError"]
