"""What an engine said: a bounded, redacted tail of its output, kept in memory, never in a file.

Root must never open a file an engine can write (it could be a symlink planted by the engine's
account), so a server's stdout and stderr go through a pipe that a thread drains into the last
few lines, each redacted of the password as it completes. ``_tail`` does the same for the output
of a helper program that ran to completion.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterable

from ._secrets import _redact

_LOG_LINES = 60
_LOG_LINE_CHARS = 1000
_LOG_PENDING_BYTES = 64 * 1024
#: Seconds ``settle`` gives a dead engine's pipe to deliver its last words (once per engine).
_SETTLE_SECONDS = 0.5


def _tail(text: str, secrets: Iterable[str], lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return _redact("\n".join(kept), secrets) or "(no output)"


class _LogTail:
    """Drains an engine's stdout+stderr pipe into a bounded, redacted in-memory tail.

    Lines are redacted whole, as they complete, so a password can never be split across the
    boundary of what we keep; an overlong unfinished line is dropped rather than cut.
    """

    def __init__(self, fd: int, secrets: tuple[str, ...], name: str) -> None:
        self._secrets = secrets
        self._lines: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self._pending = b""
        self._skipping = False
        self._settled = False
        self._lock = threading.Lock()
        self._eof = threading.Event()
        threading.Thread(target=self._pump, args=(fd,), name=f"{name}-log", daemon=True).start()

    def _pump(self, fd: int) -> None:
        try:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                self._feed(chunk)
        finally:
            self._feed(b"", final=True)
            os.close(fd)
            self._eof.set()

    def _feed(self, chunk: bytes, *, final: bool = False) -> None:
        if self._skipping:  # the rest of a dropped line: none of it may be kept
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            chunk, self._skipping = chunk[newline + 1 :], False
        *complete, rest = (self._pending + chunk).split(b"\n")
        if final and rest:
            complete.append(rest)
            rest = b""
        elif len(rest) > _LOG_PENDING_BYTES:
            complete.append(b"(overlong output line dropped)")
            rest, self._skipping = b"", True
        self._pending = rest
        with self._lock:
            for raw in complete:
                line = _redact(raw.decode(errors="replace"), self._secrets).rstrip()
                if line.strip():
                    self._lines.append(line[-_LOG_LINE_CHARS:])

    def wait_eof(self, timeout: float) -> bool:
        return self._eof.wait(timeout)

    def settle(self) -> None:
        """Once the engine exited: give the pipe a moment to deliver its last words (once only:
        a process that escaped the engine may hold the pipe open for as long as it lives)."""
        if not self._settled:
            self._settled = True
            self._eof.wait(_SETTLE_SECONDS)

    def text(self, lines: int = 6) -> str:
        with self._lock:
            kept = list(self._lines)[-lines:]
        return _redact("\n".join(kept), self._secrets) or "(no output)"
