"""When and how long to retry a request that failed for a passing reason.

Only idempotent requests (GET, DELETE) are retried here; a create is never re-sent blindly (see
``redu_mcp.provisioning.create`` for how an uncertain create is reconciled by name). The policy is
capped exponential backoff with full jitter (tenacity), overridden by the server's ``Retry-After``
(capped), and bounded in total time by the policy and by the caller's deadline
(``redu_mcp.api._deadlines``). When the API asks for a ``Retry-After`` longer than the time left, the
call fails at once. The error raised on giving up is a copy carrying ``RetryFacts``.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

import anyio

from redu_mcp.api import _telemetry as telemetry
from redu_mcp.api._deadlines import time_left, within
from redu_mcp.api._errors import GiveUpReason, RateLimitedError, ReduError, RetryFacts, ServerError, TransportError

if TYPE_CHECKING:
    import tenacity

log = logging.getLogger("redu_mcp.api")  # one logger for the library, like httpx2's
T = TypeVar("T")

RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})


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

    def delay_after(self, exc: ReduError, failed_attempt: int) -> float:
        """How long to wait before the next attempt: the server's advice (capped), else backoff."""
        advised = retry_after_of(exc)
        if advised is not None:
            return min(advised, self.retry_after_max)
        return self.backoff(failed_attempt)

    @property
    def min_attempt_seconds(self) -> float:
        """A retry is not worth starting with less time than this left for its answer."""
        return min(1.0, self.total_seconds / 10)


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


def no_time_to_retry(failure: ReduError, sleep: float = 0.0, min_attempt: float = 0.0) -> GiveUpReason | None:
    """Why no attempt after ``failure`` fits in the deadline, if none does: the API asks for a longer
    pause than is left (``retry_after``), or ``sleep`` plus the shortest worthwhile attempt would end
    past it (``deadline``). None without a deadline, or with time enough."""
    left = time_left()
    if left is None:
        return None
    advised = retry_after_of(failure)
    if advised is not None and advised > left:
        return "retry_after"
    if sleep + min_attempt > left:
        return "deadline"
    return None


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
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always UTC, never local time
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def call_with_retries(policy: RetryPolicy, attempt: Callable[[int], Awaitable[T]], *, describe: str) -> T:
    """Run ``attempt(n)`` (n = 1, 2, …) until it succeeds, fails for good, or the policy is spent.

    The whole call (attempts and waits) ends within ``policy.total_seconds`` and any enclosing
    deadline: the client clips each attempt to the time left, and no wait starts that would end
    past it. A ``Retry-After`` longer than the time left stops at once. Giving up after retrying
    raises a copy of the last error with ``RetryFacts``.
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
        return await _retry(policy, attempt, first_failure, started, describe)


async def _retry(
    policy: RetryPolicy, attempt: Callable[[int], Awaitable[T]], first_failure: ReduError, started: float, describe: str
) -> T:
    import tenacity  # imported on first use: start-up does not need it

    stopped_by: list[GiveUpReason] = []

    def failure(state: tenacity.RetryCallState) -> ReduError:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, ReduError):  # only our errors are retried; anything else as it is
            raise exc if exc else AssertionError("no outcome to decide on")
        return exc

    def wait(state: tenacity.RetryCallState) -> float:
        return policy.delay_after(failure(state), state.attempt_number)

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            stopped_by.append("attempts")
            return True
        reason = no_time_to_retry(failure(state), state.upcoming_sleep, policy.min_attempt_seconds)
        if reason is not None:
            stopped_by.append(reason)
        return reason is not None

    def give_up(state: tenacity.RetryCallState) -> T:
        exc = failure(state)
        facts = RetryFacts(
            attempts=state.attempt_number,
            elapsed=time.monotonic() - started,
            stopped_by=stopped_by[-1] if stopped_by else "attempts",
            time_left=time_left(),
        )
        log.info("giving up on %s after %d attempt(s) (%s): %s", describe, facts.attempts, facts.stopped_by,
                 type(exc).__name__)  # fmt: skip
        raise exc.after_retrying(facts) from None

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = failure(state)
        log.info("retrying %s after attempt %d failed (%s); waiting %.2fs", describe, state.attempt_number,
                 type(exc).__name__, state.upcoming_sleep)  # fmt: skip
        error_type = str(exc.status) if exc.status is not None else type(exc).__name__
        telemetry.retried(describe, error_type, state.upcoming_sleep, rate_limited=exc.status == 429)

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
