"""How long anything may still take: one deadline per task, shared by everything it calls.

``within(seconds)`` sets a deadline for its block: the sooner of ``now + seconds`` and any enclosing
deadline. The client clips every HTTP exchange to ``time_left()``, and a retry never starts (and
never sleeps) past it. ``share_of_time_left`` keeps part of the time for what follows a step: a
create's POST always leaves time for the look-up that may have to follow it.

The deadline lives in a context variable, so concurrent tasks each have their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("redu_mcp_deadline", default=None)


def time_left() -> float | None:
    """Seconds until the current deadline (may be negative), or None when there is none."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Everything in the block must end within ``seconds`` (or the enclosing deadline, if sooner).

    ``None`` adds no deadline of its own (an enclosing one still holds)."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + max(0.0, seconds)
    enclosing = _DEADLINE.get()
    if enclosing is not None and enclosing < deadline:
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
