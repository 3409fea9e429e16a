"""What the layers share when they turn a request away: the answer, and the log line.

An answer is JSON-RPC-shaped, as the SDK's own refusals are, so a client reads ours and the SDK's
alike; a warning about refused requests is written at most once a minute per kind, so that a flood
of refused requests cannot become a flood of log lines.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from starlette.responses import JSONResponse, Response

log = logging.getLogger("redu_mcp.server.http")  # one logger for the package, like httpx2's


class QuietWarnings:
    """A warning per ``key`` at most once a minute, with the count of those held back: a flood of
    refused requests must not become a flood of log lines."""

    EVERY = 60.0
    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}  # key -> (when last logged, held back since)

    def warn(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        last, held = self._last.get(key, (-math.inf, 0))
        if now - last < self.EVERY:
            self._last[key] = (last, held + 1)
            return
        if len(self._last) >= self.MAX_KEYS:
            self._last.clear()
        self._last[key] = (now, 0)
        suffix = f" ({held} more since the last such warning)" if held else ""
        log.warning(message + suffix, *args)


def refusal_body(status: int, message: str, retry_after: int | None = None, **extra_headers: str) -> Response:
    """A JSON-RPC-shaped error body (no request id), as the SDK's own refusals look."""
    headers = dict(extra_headers)
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)
