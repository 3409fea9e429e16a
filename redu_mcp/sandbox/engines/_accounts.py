"""The pool of dedicated system accounts engines run as when we are root: one per live engine.

PostgreSQL refuses to run as root, and a shared account (the old ``nobody``) lets one engine read
another's files. So every engine runs as its own system user, ``redu-engine-01`` …
``redu-engine-64``, each with its own primary group and no supplementary groups, created the
first time it is needed (``useradd --system --user-group --no-create-home --shell nologin``) and
reused afterwards, so the user database only ever grows to the pool size. We chose real accounts
over ``nss_wrapper`` (a fake passwd via LD_PRELOAD for bare numeric uids): a uid that is not in
/etc/passwd can later be given by ``useradd`` to a real person, and then "kill every process of
the engine's uid" would hit that person; a registered system user reserves its uid, and needs no
preloaded library inside the database server. A slot is held with an ``flock`` on a root-only
lock file (``/run/redu-engines/<user>.lock``) for as long as its engine lives, and handed out
only once /proc shows no process of its uid. Without root, engines run as the invoking user: no
isolation is possible, and no escalation either.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import EngineStartError, EngineUnavailable
from ._janitor import _DIR_FLAGS, POOL_PREFIX, _child_env, _pool_user_problem, _reap_uid

log = logging.getLogger("redu_mcp.sandbox.engines")  # one logger for the package, like httpx2's

#: How many pool accounts there are: POOL_PREFIX + "01" … POOL_SIZE.
POOL_SIZE = 64
#: Root-only directory holding one lock file per pool account.
POOL_LOCK_DIR = Path("/run/redu-engines")


@dataclass
class _Account:
    """The account an engine's processes run as; no uid means 'as ourselves' (not root)."""

    name: str | None = None
    uid: int | None = None
    gid: int | None = None
    #: The pool slot's lock (an flock); held while the account is in use.
    lock_fd: int | None = field(default=None, repr=False)

    @property
    def isolated(self) -> bool:
        return self.uid is not None

    @property
    def ids(self) -> tuple[int, int] | None:
        """(uid, gid) of a dedicated account; None when engines run as ourselves."""
        return None if self.uid is None or self.gid is None else (self.uid, self.gid)

    @property
    def effective_ids(self) -> tuple[int, int]:
        """The (uid, gid) the engine's processes run as."""
        return self.ids or (os.getuid(), os.getgid())

    def popen_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        # extra_groups=[] drops root's supplementary groups, which user=/group= alone keep.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def release(self) -> None:
        fd, self.lock_fd = self.lock_fd, None
        if fd is not None:
            os.close(fd)


def _open_pool_dir() -> int:
    """The lock directory's fd, after checking only root can write there."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(POOL_LOCK_DIR, 0o700)
    try:
        fd = os.open(POOL_LOCK_DIR, _DIR_FLAGS)
    except OSError as exc:
        raise EngineUnavailable(f"cannot open {POOL_LOCK_DIR}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if info.st_uid != 0 or info.st_mode & 0o022:
        os.close(fd)
        raise EngineUnavailable(f"{POOL_LOCK_DIR} must be a directory only root can write")
    return fd


def _lock_slot(name: str, dir_fd: int, *, wait: bool = False) -> int | None:
    """Take the slot's flock; its fd, or None if someone else holds it."""
    fd = os.open(f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _find_program(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def _create_pool_user(name: str) -> None:
    useradd = _find_program("useradd")
    if useradd is None:
        raise EngineUnavailable(
            f"running engines as root needs the system user {name!r}, and useradd is missing "
            "to create it: install the Debian package 'passwd'"
        )
    shell = next(
        (s for s in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if os.path.exists(s)),
        "/bin/false",
    )
    argv = [
        useradd,
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        shell,
        "--comment",
        "redu-mcp sandbox engine",
        name,
    ]
    result = subprocess.run(
        argv,
        env=_child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)  # someone else created it meanwhile: fine
            return
        output = result.stdout.decode(errors="replace").strip()[-300:]
        raise EngineUnavailable(f"useradd {name} failed (exit {result.returncode}): {output}")
    log.info("created the system user %s for sandbox engines", name)


def _check_pool_user(entry: pwd.struct_passwd) -> None:
    """Refuse an account that is not exclusively ours (we kill everything its uid runs)."""
    problem = _pool_user_problem(entry)
    if problem:
        raise EngineUnavailable(
            f"the account {entry.pw_name!r} exists but is not a dedicated sandbox engine account ({problem})"
        )


def _pool_user(name: str, dir_fd: int) -> pwd.struct_passwd:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        guard = _lock_slot("useradd", dir_fd, wait=True)  # one creator at a time
        assert guard is not None  # a waiting lock is always taken
        try:
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                _create_pool_user(name)
                entry = pwd.getpwnam(name)
        finally:
            os.close(guard)
    _check_pool_user(entry)
    return entry


def _acquire_account() -> _Account:
    """A free pool account, locked, with no process of its uid alive. Blocking."""
    dir_fd = _open_pool_dir()
    try:
        for number in range(1, POOL_SIZE + 1):
            name = f"{POOL_PREFIX}{number:02d}"
            lock_fd = _lock_slot(name, dir_fd)
            if lock_fd is None:
                continue
            try:
                entry = _pool_user(name, dir_fd)
                if not _reap_uid(entry.pw_uid, entry.pw_gid):
                    log.warning("%s still has processes that will not die; skipping it", name)
                    os.close(lock_fd)
                    continue
            except BaseException:
                os.close(lock_fd)
                raise
            return _Account(name, entry.pw_uid, entry.pw_gid, lock_fd)
    finally:
        os.close(dir_fd)
    raise EngineStartError(f"all {POOL_SIZE} sandbox engine accounts are in use")
