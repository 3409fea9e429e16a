"""The root directory that holds the engines' directories, and what a dead owner left in one.

The root (``redu-sandbox-*``) is root's, mode 0711: an engine can reach its own directory but
cannot list or create entries, so nothing an engine plants can be where root creates files. The
few files root does create there (``owner.pid``) are opened ``O_NOFOLLOW``/``O_EXCL`` relative to
the root's fd. ``owner.pid`` names the owning process, so that if both the owner and its janitor
were killed, the next ``Engines()`` can kill and remove what they left (killing a uid's processes
only if its pool slot is free: a held slot belongs to a live engine or a janitor).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ._accounts import _lock_slot, _open_pool_dir
from ._errors import EngineUnavailable
from ._janitor import _DIR_FLAGS, _is_pool_uid, _proc_start_time, _reap_uid, _remove_engine_dir

log = logging.getLogger("redu_mcp.sandbox.engines")  # one logger for the package, like httpx2's

_OWNER_FILE = "owner.pid"
_ROOT_PREFIX = "redu-sandbox-"


def _check_secure_dir(path: Path) -> None:
    """As root: ``path`` and its ancestors must be writable only by root (sticky dirs aside)."""
    current = path.resolve()
    info = os.lstat(current)
    if info.st_uid != 0 or info.st_mode & 0o022:
        raise ValueError(f"{current} must be owned by root and writable by nobody else")
    for directory in current.parents:  # nobody else may swap the root for something else
        info = os.lstat(directory)
        if info.st_uid != 0 or (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX):
            raise ValueError(f"{directory} must be root's, and sticky if others can write it")


def _write_new_file(dir_fd: int, name: str, text: str) -> None:
    """Create a new file in a root-owned directory: never through a symlink, never an old one."""
    fd = os.open(
        name,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o644,
        dir_fd=dir_fd,
    )
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _read_owner(root_fd: int) -> tuple[int, int | None] | None:
    try:
        fd = os.open(_OWNER_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
    except OSError:
        return None
    try:
        words = os.read(fd, 100).split()
        pid = int(words[0])
        start = int(words[1]) if len(words) > 1 else None
    except (OSError, ValueError, IndexError):
        return None
    finally:
        os.close(fd)
    return pid, start


def _owner_alive(pid: int, start: int | None) -> bool:
    if pid == os.getpid():
        return True
    actual = _proc_start_time(pid)
    if actual is None:
        return False
    return start is None or actual == start


def _sweep_root(root_fd: int) -> None:
    """Kill and remove every engine directory below a dead owner's root."""
    isolated = os.geteuid() == 0
    with os.scandir(root_fd) as entries:
        names = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
    for name, info in names:
        if not stat.S_ISDIR(info.st_mode):
            continue
        if isolated:
            entry = _is_pool_uid(info.st_uid)
            if entry is not None:
                # Only if its slot is free: a held slot belongs to a live engine (or a janitor).
                with contextlib.suppress(OSError, EngineUnavailable):
                    dir_fd = _open_pool_dir()
                    try:
                        lock_fd = _lock_slot(entry.pw_name, dir_fd)
                    finally:
                        os.close(dir_fd)
                    if lock_fd is not None:
                        try:
                            _reap_uid(entry.pw_uid, entry.pw_gid)
                        finally:
                            os.close(lock_fd)
        _remove_engine_dir(root_fd, name, reclaim=isolated)


def _remove_stale_roots() -> None:
    """Remove default roots whose owner process and janitor died without cleaning up."""
    me = os.geteuid()
    for root in Path(tempfile.gettempdir()).glob(_ROOT_PREFIX + "*"):
        try:
            info = os.lstat(root)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != me:
                continue  # not ours (anyone can make a directory in /tmp)
            fd = os.open(root, _DIR_FLAGS)
        except OSError:
            continue
        try:
            owner = _read_owner(fd)
            if owner is None or _owner_alive(*owner):
                continue
            log.info("removing stale sandbox directory %s", root)
            _sweep_root(fd)
            if os.path.samestat(os.fstat(fd), os.lstat(root)):
                shutil.rmtree(root, ignore_errors=True)
        except OSError as exc:
            log.warning("could not remove stale sandbox directory %s: %s", root, exc)
        finally:
            os.close(fd)
