"""The process's logging: one handler on stderr, cleaned of every secret, at any level.

* Every record goes through the root handler, which carries the API library's ``ScrubbingFilter``:
  it removes every secret the process holds (the API key and pass-through keys, passwords it saw,
  state keys, tokens: ``redu_mcp.api.remember_secret``), also a run of 12 of their characters.
* Libraries that log what they send and receive (response bodies, SSE chunks, request lines) are
  kept below DEBUG whatever ``--log-level`` says: ``sse_starlette`` logs every chunk it streams, so
  a revealed password would be written at DEBUG; the HTTP clients and the MCP SDK log payloads too.
"""

from __future__ import annotations

import logging
import sys
from typing import Final

from redu_mcp.api import ScrubbingFilter

#: Loggers that see payloads, and the most they may say: never DEBUG.
CAPPED: Final = {
    "sse_starlette": logging.INFO,
    "httpx2": logging.INFO,
    "httpcore2": logging.INFO,
    "httpx": logging.INFO,
    "httpcore": logging.INFO,
    "mcp": logging.INFO,
    "redis": logging.INFO,
}
FORMAT: Final = "%(levelname)s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    """Log to stderr at ``level`` through a scrubbing handler; payload loggers capped (see above)."""
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter())
    for name, most in CAPPED.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(most, root.level))
    if root.level > logging.DEBUG:
        # One INFO line per upstream request is noise in a desktop client's log (and costs per call).
        logging.getLogger("httpx2").setLevel(logging.WARNING)
