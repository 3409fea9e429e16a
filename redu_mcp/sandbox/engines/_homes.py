"""One engine's home: its directory below the root and the account it runs as, torn down once.

Root creates the directory (``mkdir`` relative to the root's fd), hands it to the engine's
account, mode 0700, and writes nothing into it. Teardown goes in an order that keeps root from
ever touching what an engine can still write: kill every process of the account, take the
directory back and delete it without following symlinks, and only then free the account (and
tell the janitor it need not clean up). The janitor hears of the home before it exists, so a
killed owner leaves nothing behind. The account work blocks, so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ._accounts import _Account
from ._janitor import _DIR_FLAGS, _Janitor, _proc_start_time, _reap_uid, _remove_engine_dir

log = logging.getLogger("redu_mcp.sandbox.engines")  # one logger for the package, like httpx2's

_T = TypeVar("_T")


async def _in_thread(work: Callable[[], _T], undo: Callable[[_T], None]) -> _T:
    """Run blocking ``work`` in a thread; if we are cancelled meanwhile, ``undo`` its result."""
    future = concurrent.futures.Future()  # type: concurrent.futures.Future[_T]

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, daemon=True).start()
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:

        def cleanup(done: concurrent.futures.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                undo(done.result())

        future.add_done_callback(cleanup)
        raise


class _Home:
    """One engine's directory and account, and their one-time teardown."""

    def __init__(self, name: str, path: Path, root_fd: int, account: _Account, janitor: _Janitor | None) -> None:
        self.name = name
        self.path = path
        self.account = account
        self._root_fd = os.dup(root_fd)  # ours to close, whenever the manager closes its own
        self._janitor = janitor
        self._released = False
        self._lock = threading.Lock()

    def create(self) -> None:
        """mkdir below the root (by dir fd), owned by the engine's account, mode 0700."""
        if self._janitor is not None:
            uid = "-" if self.account.uid is None else str(self.account.uid)
            gid = "-" if self.account.gid is None else str(self.account.gid)
            fds = [self.account.lock_fd] if self.account.lock_fd is not None else []
            self._janitor.send(f"engine {self.name} {uid} {gid}", fds)
        os.mkdir(self.name, 0o700, dir_fd=self._root_fd)
        fd = os.open(self.name, _DIR_FLAGS, dir_fd=self._root_fd)
        try:
            if (ids := self.account.ids) is not None:
                os.fchown(fd, *ids)
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)

    def launched(self, pid: int) -> None:
        if self._janitor is not None:
            self._janitor.send(f"pid {self.name} {pid} {_proc_start_time(pid) or 0}")

    def release(self) -> None:
        """Kill the account's processes, delete the directory, free the account. Idempotent."""
        with self._lock:
            if self._released:
                return
            self._released = True
            try:
                account = self.account
                dead = _reap_uid(*ids) if (ids := account.ids) is not None else True
                removed = _remove_engine_dir(self._root_fd, self.name, reclaim=account.isolated)
                if not removed:
                    log.warning("could not remove %s", self.path)
                if dead:
                    if self._janitor is not None:
                        self._janitor.send(f"gone {self.name}")
                    account.release()
                else:
                    # Keep the slot locked (here and in the janitor): its uid is not reusable.
                    log.warning("%s has processes that will not die", account.name)
            finally:
                os.close(self._root_fd)
