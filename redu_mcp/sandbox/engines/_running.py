"""A launched server: is it ready, why did it die, and stopping it.

The server is a ``subprocess.Popen`` rather than an asyncio process because a Popen can be polled
and reaped both from async code and from the synchronous ``close_sync()``, whichever event loop
(or none: atexit) is around at the time. Stopping asks for a fast shutdown, SIGKILLs after
``STOP_GRACE``, and then releases the engine's home, which kills whatever its account still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._binaries import Engine
from ._homes import _Home
from ._login_checks import check_postgres_login, check_redis_login
from ._output import _LogTail

log = logging.getLogger("redu_mcp.sandbox.engines")  # one logger for the package, like httpx2's

#: Seconds an engine gets to shut down cleanly before it is SIGKILLed.
STOP_GRACE = 5.0


@dataclass(eq=False)
class RunningEngine:
    """One launched server process, its port and its directory."""

    kind: Engine
    host: str
    port: int
    actual_version: str
    #: The engine's own directory (data, and nothing secret of ours); removed by stop().
    data_dir: Path
    pid: int
    #: The account the engine runs as (a dedicated pool account as root, else our own).
    uid: int
    gid: int
    _process: subprocess.Popen[bytes] = field(repr=False)
    _log: _LogTail = field(repr=False)
    _home: _Home = field(repr=False)
    _password: str = field(repr=False)
    _user: str = field(default="", repr=False)
    _dbname: str = field(default="", repr=False)
    _psql: Path | None = field(default=None, repr=False)
    _stop_requested: bool = field(default=False, repr=False)
    _kill_at: float = field(default=0.0, repr=False)

    async def is_ready(self) -> bool:
        """True only when an authenticated connection succeeds. Never raises."""
        if self._stop_requested or self._process.poll() is not None:
            return False
        if self.kind == "postgres":
            return await check_postgres_login(
                host=self.host,
                port=self.port,
                user=self._user,
                dbname=self._dbname,
                password=self._password,
                psql=self._psql,
            )
        return await check_redis_login(host=self.host, port=self.port, password=self._password)

    def failure(self) -> str | None:
        """Why the process died (with the tail of its output), or None while it runs / once stopped."""
        if self._stop_requested:
            return None
        code = self._process.poll()
        if code is None:
            return None
        self._log.settle()  # its last words may still be in the pipe
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return f"{self.kind} exited ({how}): {self._log_tail()}"

    async def stop(self) -> None:
        """Terminate (SIGKILL after STOP_GRACE), wait, kill its account's processes, remove data_dir.

        Idempotent.
        """
        self._request_stop()
        while not self._reaped():
            await asyncio.sleep(0.05)
        await asyncio.to_thread(self._home.release)

    def _stop_sync(self) -> None:
        self._request_stop()
        while not self._reaped():
            time.sleep(0.05)
        self._home.release()

    def _request_stop(self) -> None:
        if self._stop_requested:
            return
        self._stop_requested = True
        self._kill_at = time.monotonic() + STOP_GRACE
        # PostgreSQL's SIGTERM is "smart" shutdown, which waits for clients to disconnect;
        # SIGINT is its "fast" shutdown. Redis shuts down on SIGTERM.
        self._signal(signal.SIGINT if self.kind == "postgres" else signal.SIGTERM)

    def _reaped(self) -> bool:
        """True once the process is gone; past the grace period it gets SIGKILL."""
        if self._process.poll() is not None:
            return True
        now = time.monotonic()
        if now >= self._kill_at:
            self._signal(signal.SIGKILL)
            if now >= self._kill_at + STOP_GRACE:  # unkillable (D state?): stop waiting
                log.warning("%s pid %s did not exit after SIGKILL", self.kind, self.pid)
                return True
        return False

    def _signal(self, sig: signal.Signals) -> None:
        # Only while unreaped, so the pid cannot have been reused. The engine leads its own
        # process group (start_new_session), so this reaches anything it forked too; whatever
        # left the group is killed by uid when the home is released.
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def _log_tail(self) -> str:
        return self._log.text()
