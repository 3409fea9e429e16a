"""Real PostgreSQL and Redis server processes behind sandbox instances.

``Engines`` starts ``postgres`` / ``redis-server`` on a free 127.0.0.1 port with its data in a
throwaway directory, and tears it down again. It has no dependency on the rest of redu_mcp.

Threat model: whoever holds an instance's credentials may run anything the engine lets a client
run. They must not get root, must not reach another instance (its files, its password), and
must not leave anything behind once the instance is gone. Why things are done the way they are:

* **One account per live engine (when we run as root).** PostgreSQL refuses to run as root, and
  a shared account (the old ``nobody``) lets one engine read another's files. Every engine runs
  as its own dedicated system user taken from a pool, ``redu-engine-01`` … ``redu-engine-64``,
  each with its own primary group and no supplementary groups. A pool user is created the first
  time it is needed (``useradd --system --user-group --no-create-home --shell nologin``) and
  reused afterwards, so the user database only ever grows to the pool size. We chose real
  accounts over ``nss_wrapper`` (a fake passwd via LD_PRELOAD for bare numeric uids, which
  initdb/postgres need for ``getpwuid()``): a uid that is not in /etc/passwd can later be given
  by ``useradd`` to a real person, and then "kill every process of the engine's uid" would hit
  that person; a registered system user reserves its uid. It also needs no extra package and no
  preloaded library inside the database server. Without root, engines run as the invoking user:
  no isolation is possible, and no escalation either.
* **A uid is handed out only when nothing of it runs.** A pool slot is held with an ``flock`` on
  a root-only lock file (``/run/redu-engines/<user>.lock``) for as long as its engine lives, in
  this process and, through a passed file descriptor, in the janitor (below). Before a slot is
  used, and after its engine stopped, every process of that uid is killed (SIGKILL through a
  pidfd for each process found in /proc, plus ``kill(-1)`` issued *as that uid*, which the
  kernel applies atomically, so a process that ``setsid``-escaped or keeps forking dies too),
  and the slot is only reused once /proc shows none left.
* **Root never opens, reads or writes anything an engine can write.** The root directory
  (``redu-sandbox-*``) is root's, mode 0711: an engine can reach its own directory but cannot
  list or create entries. Each engine directory is created there by root (``mkdir`` relative to
  the root's directory fd) and handed to the engine's account, mode 0700. Root writes nothing
  into it: the engines' stdout/stderr go through a pipe to a bounded in-memory tail (redacted of
  the password), Redis reads its configuration (with ``requirepass``) from stdin, so no secret
  file exists at all, and PostgreSQL needs no password file (below). Removing an engine
  directory happens only after its uid has no process left: root first takes the directory back
  (``fchown`` through an ``O_NOFOLLOW`` descriptor), then deletes it with the fd-based
  ``shutil.rmtree``, which never follows symlinks. The few files root does create (``owner.pid``,
  lock files) live in root-owned directories and are opened ``O_NOFOLLOW``/``O_EXCL`` relative to
  a directory fd.
* **Clients are not superusers.** initdb's bootstrap superuser is a role the client never learns
  and that cannot log in (no password, and ``local`` connections are rejected; the server has no
  unix socket at all). ``db_user`` is created ``LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
  NOREPLICATION NOBYPASSRLS`` and owns ``db_name``, so it can do anything inside its database but
  not ``COPY … TO PROGRAM``, read server files or load code. Its password is set as a
  SCRAM-SHA-256 verifier computed here (with PostgreSQL's SASLprep), so the plaintext never
  reaches the server, its logs or single-user mode's output.
* **Redis keeps its protected configs off**: ``enable-protected-configs``, ``enable-debug-command``
  and ``enable-module-command`` are ``no`` (a client cannot ``CONFIG SET dir`` to write files
  elsewhere, load modules or use ``DEBUG``). Redis older than 7 has no such switches; there the
  three commands are renamed away.
* **No orphans, no leftover secrets.** Engines run in a new session (a Ctrl-C in the terminal
  does not reach them before we can stop them cleanly) and with ``PR_SET_PDEATHSIG=SIGKILL``, so
  the kernel kills them if the *thread* that started them dies. An atexit hook stops whatever is
  still running. A SIGKILLed owner cannot run that hook, so each ``Engines`` also starts a tiny
  *janitor* (this module run as a script, in its own session): it holds one end of a socket
  pair whose other end only the owner has, learns each engine's directory, account and lock
  from it, and when the socket reports EOF (the owner is gone, however it ended) it kills the
  engines' processes, removes their directories and the root, and exits. If the janitor was
  killed too, the next ``Engines()`` removes leftover ``redu-sandbox-*`` directories whose owner
  process is gone (and kills their uids' processes if their slots are free).
* **Passwords** never reach argv, logs or exceptions: PostgreSQL gets a verifier on stdin, Redis
  its config on stdin, psql the password in ``PGPASSWORD``. PostgreSQL is told not to log client
  errors or statements (a failed ``ALTER ROLE ... PASSWORD`` would otherwise land in the log),
  and every log excerpt we return is redacted anyway.
* **Non-blocking.** Short helper programs (initdb, psql, ``--version``) run through asyncio's
  subprocess API, and the blocking account work (locks, ``useradd``, killing a uid's processes)
  in a thread. The long-running servers are launched with ``subprocess.Popen`` — the same
  fork+exec asyncio does internally, so it returns at once — because a Popen can be polled and
  reaped both from async code and from the synchronous ``close_sync()``, whichever event loop
  (or none: atexit) is around at the time.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import collections
import concurrent.futures
import contextlib
import ctypes
import errno
import fcntl
import grp
import hashlib
import hmac
import itertools
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import stringprep
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = [
    "Engine",
    "EngineStartError",
    "EngineUnavailable",
    "Engines",
    "RunningEngine",
    "check_engines_available",
    "check_postgres_login",
    "check_redis_login",
    "find_binaries",
]

log = logging.getLogger(__name__)

#: Which server program an engine is.
Engine = Literal["postgres", "redis"]

HOST = "127.0.0.1"
#: Where Debian installs versioned PostgreSQL server binaries (``<version>/bin``).
POSTGRES_LIB_DIR = Path("/usr/lib/postgresql")
#: Seconds an engine gets to shut down cleanly before it is SIGKILLed.
STOP_GRACE = 5.0
#: The pool of accounts engines run as when we are root: POOL_PREFIX + "01" … POOL_SIZE.
POOL_PREFIX = "redu-engine-"
POOL_SIZE = 64
#: Root-only directory holding one lock file per pool account.
POOL_LOCK_DIR = Path("/run/redu-engines")
#: Seconds we keep killing a uid's processes before giving up on reusing it.
REAP_TIMEOUT = 10.0

_PROGRAMS: dict[str, tuple[str, ...]] = {
    "postgres": ("initdb", "postgres", "psql"),
    "redis": ("redis-server",),
}
_APT_PACKAGE = {"postgres": "postgresql", "redis": "redis-server"}
_OWNER_FILE = "owner.pid"
_ROOT_PREFIX = "redu-sandbox-"
_REDACTED = "********"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: initdb's bootstrap superuser: nobody can log in as it (see the module docstring).
_SUPERUSER = "redu_admin"
_LOG_LINES = 60
_LOG_LINE_CHARS = 1000
_LOG_PENDING_BYTES = 64 * 1024


class EngineUnavailable(Exception):
    """A program an engine needs is not installed; the message names it and the apt package."""


class EngineStartError(Exception):
    """An engine failed to start; the message is the reason (never containing a password)."""


# --------------------------------------------------------------------------- finding binaries


def _is_executable(path: Path) -> bool:
    # os.path.isfile, unlike Path.is_file, treats an unreadable PATH entry as "not here".
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)) or (-1,)


def _path_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]


def _postgres_dirs() -> list[Path]:
    """PATH first (an explicit choice wins), then Debian's versioned dirs, newest first."""
    versioned = [d for d in POSTGRES_LIB_DIR.glob("*/bin") if os.path.isdir(d)]
    versioned.sort(key=lambda d: _version_key(d.parent.name), reverse=True)
    return _path_dirs() + versioned


def _missing(kind: str, names: list[str]) -> str:
    package = _APT_PACKAGE[kind]
    return (
        f"missing program(s) {', '.join(names)}: install the Debian package {package!r} (apt-get install -y {package})"
    )


def _find_postgres() -> dict[str, Path]:
    dirs = _postgres_dirs()
    for directory in dirs:
        if not _is_executable(directory / "initdb"):
            continue
        # initdb runs the postgres next to its real location, so take both from there.
        real = (directory / "initdb").resolve().parent
        if not _is_executable(real / "postgres"):
            continue
        psql = real / "psql"
        if not _is_executable(psql):
            which = shutil.which("psql")
            if which is None:
                raise EngineUnavailable(_missing("postgres", ["psql"]))
            psql = Path(which)
        return {"initdb": real / "initdb", "postgres": real / "postgres", "psql": psql}
    absent = [name for name in _PROGRAMS["postgres"] if not any(_is_executable(d / name) for d in dirs)]
    raise EngineUnavailable(_missing("postgres", absent or ["initdb", "postgres"]))


def find_binaries(kind: Engine) -> dict[str, Path]:
    """Locate the programs for ``kind``: initdb/postgres/psql, or redis-server.

    PostgreSQL is looked up in PATH and then in /usr/lib/postgresql/*/bin (newest first), taking
    initdb and postgres from the same directory. Raises EngineUnavailable when something is missing.
    """
    if kind == "postgres":
        return _find_postgres()
    if kind == "redis":
        found = shutil.which("redis-server")
        if found is None:
            raise EngineUnavailable(_missing("redis", ["redis-server"]))
        return {"redis-server": Path(found)}
    raise ValueError(f"unknown engine kind {kind!r}")


def check_engines_available() -> None:
    """Raise one EngineUnavailable naming every missing program (both kinds) and its package."""
    problems = []
    engines: tuple[Engine, ...] = ("postgres", "redis")
    for kind in engines:
        try:
            find_binaries(kind)
        except EngineUnavailable as exc:
            problems.append(str(exc))
    if problems:
        raise EngineUnavailable("; ".join(problems))


_versions: dict[Path, str] = {}


async def _binary_version(binary: Path) -> str:
    """The version the binary reports, e.g. '15.18' or '7.0.15' (cached per path)."""
    if binary not in _versions:
        code, out = await _run([str(binary), "--version"], cwd=None, run_as=_Account(), timeout=30)
        match = re.search(r"\d+(?:\.\d+)*", out)
        if code != 0 or match is None:
            raise EngineStartError(f"{binary} --version failed (exit {code}): {out.strip()[-200:]}")
        _versions[binary] = match.group(0)
    return _versions[binary]


# --------------------------------------------------------------------------- accounts


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
    name = entry.pw_name
    problem = None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        problem = "it is uid or gid 0"
    elif os.path.basename(entry.pw_shell) not in ("nologin", "false"):
        problem = f"its shell is {entry.pw_shell}"
    else:
        try:
            group = grp.getgrgid(entry.pw_gid)
        except KeyError:
            group = None
        if group is None or group.gr_name != name or group.gr_mem:
            problem = "its primary group is not its own, member-less group"
        elif any(
            other.pw_name != name and (other.pw_uid == entry.pw_uid or other.pw_gid == entry.pw_gid)
            for other in pwd.getpwall()
        ):
            problem = "another account shares its uid or group"
    if problem:
        raise EngineUnavailable(
            f"the account {name!r} exists but is not a dedicated sandbox engine account ({problem})"
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


def _is_pool_uid(uid: int) -> pwd.struct_passwd | None:
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return None
    if not entry.pw_name.startswith(POOL_PREFIX):
        return None
    try:
        _check_pool_user(entry)
    except EngineUnavailable:
        return None
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


# --------------------------------------------------------------------------- processes of a uid


def _proc_status(pid: int | str) -> tuple[set[int], str, int] | None:
    """(real/effective/saved/fs uids, state letter, thread count) of a process, or None."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    uids: set[int] = set()
    state, threads = "?", 1
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Uid":
            uids = {int(v) for v in value.split()}
        elif key == "State":
            state = value.strip()[:1]
        elif key == "Threads":
            threads = int(value.strip() or 1)
    return uids, state, threads


def _pids_of_uid(uid: int) -> list[int]:
    """Processes that run with ``uid`` as any of their uids (a lone zombie counts as gone)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        status = _proc_status(entry)
        if status is None:
            continue
        uids, state, threads = status
        # A zombie leader with live threads is still running code.
        if uid in uids and (state != "Z" or threads > 1):
            found.append(int(entry))
    return found


def _kill_if_uid(pid: int, uid: int) -> None:
    """SIGKILL ``pid`` if it (still) runs as ``uid``: a pidfd makes pid reuse harmless."""
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return
    try:
        status = _proc_status(pid)  # read after the pidfd pins the process we will signal
        if status is not None and uid in status[0]:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    finally:
        os.close(pidfd)


def _kill_all_as(uid: int, gid: int) -> None:
    """kill(-1, SIGKILL) issued by a child that *is* ``uid``: every process of the uid, at once.

    The kernel walks the process list under a lock, so forking cannot outrun it. The child checks
    its own uids before it signals: as root, kill(-1) would kill the whole machine.
    """

    def sweep() -> None:
        if uid > 0 and os.getresuid() == (uid, uid, uid):
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["/bin/true"],
            user=uid,
            group=gid,
            extra_groups=[],
            preexec_fn=sweep,
            cwd="/",
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )


def _reap_uid(uid: int, gid: int, timeout: float = REAP_TIMEOUT) -> bool:
    """Kill every process of ``uid``; True once /proc shows none left. Blocking.

    Only ever for a dedicated pool account: never root, never ourselves, never an account that
    anything else (``nobody``, a person, a service) might be running as.
    """
    if uid <= 0 or uid in (os.getuid(), os.geteuid()) or _is_pool_uid(uid) is None:
        raise ValueError(f"refusing to kill every process of uid {uid}: not a sandbox engine account")
    deadline = time.monotonic() + timeout
    rounds = 0
    while True:
        pids = _pids_of_uid(uid)
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in pids:
            _kill_if_uid(pid, uid)
        if rounds:  # still there after a round: forking, or escaped before we looked
            _kill_all_as(uid, gid)
        rounds += 1
        time.sleep(min(0.01 * rounds, 0.1))


# --------------------------------------------------------------------------- spawning processes


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: no parent-death signal, atexit still works
        return None


_prctl = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_us() -> Any:
    """A preexec_fn that makes the child get SIGKILL when our (spawning) thread dies.

    It runs in the child after the uid switch — the kernel clears the setting on a credential
    change — and exits at once if we already died before it was set.
    """
    parent = os.getpid()
    prctl = _prctl
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _child_env(**extra: str) -> dict[str, str]:
    """A minimal environment: nothing of ours (PG*, REDIS*, secrets) leaks into children."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "LANG": "C"}
    env.update(extra)
    return env


def _spawn_kwargs(run_as: _Account, cwd: Path | None, env: dict[str, str] | None = None) -> dict:
    return {
        "cwd": cwd,
        "env": env if env is not None else _child_env(),
        "start_new_session": True,
        "preexec_fn": _die_with_us(),
        "umask": 0o077,
        **run_as.popen_kwargs(),
    }


async def _run(
    argv: list[str],
    *,
    cwd: Path | None,
    run_as: _Account,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float,
) -> tuple[int, str]:
    """Run a short-lived program to completion; returns (exit code, stdout+stderr)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **_spawn_kwargs(run_as, cwd, env),
        )
    except OSError as exc:
        raise EngineStartError(f"could not run {argv[0]}: {exc.strerror or exc}") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException:  # timeout or cancellation: do not leave it (or what it forked) running
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: it leads its process group
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


# --------------------------------------------------------------------------- secrets


def _secret_forms(password: str, *derived: str) -> tuple[str, ...]:
    """Every spelling of a secret that could show up in output, for redaction."""
    forms = [password, _redis_quote(password)[1:-1], *derived]
    return tuple(form for form in forms if form)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for form in sorted(secrets, key=len, reverse=True):
        if form:
            text = text.replace(form, _REDACTED)
    return text


def _tail(text: str, secrets: Iterable[str], lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return _redact("\n".join(kept), secrets) or "(no output)"


def _redis_quote(value: str) -> str:
    """A redis.conf string: every byte \\x-escaped, so no value can break the line."""
    return '"' + "".join(f"\\x{b:02x}" for b in value.encode()) + '"'


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_SASL_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


def _saslprep(password: str) -> str:
    """SASLprep (RFC 4013) exactly as PostgreSQL's pg_saslprep() applies it to SCRAM passwords.

    Like PostgreSQL (and libpq, which the clients use), a password that SASLprep prohibits is
    used as it is, and the checks look at the mapped string before normalization.
    """
    if password.isascii():
        return password
    mapped = []
    for char in password:
        if stringprep.in_table_c12(char):
            mapped.append(" ")
        elif not stringprep.in_table_b1(char):
            mapped.append(char)
    if not mapped:
        return password
    if any(check(char) for char in mapped for check in _SASL_PROHIBITED):
        return password
    if any(stringprep.in_table_d1(char) for char in mapped) and (
        any(stringprep.in_table_d2(char) for char in mapped)
        or not stringprep.in_table_d1(mapped[0])
        or not stringprep.in_table_d1(mapped[-1])
    ):
        return password
    return unicodedata.normalize("NFKC", "".join(mapped))


def _scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL would store for ``password`` (rolpassword format)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# --------------------------------------------------------------------------- engine output


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
            self._eof.wait(0.5)

    def text(self, lines: int = 6) -> str:
        with self._lock:
            kept = list(self._lines)[-lines:]
        return _redact("\n".join(kept), self._secrets) or "(no output)"


# --------------------------------------------------------------------------- directories


def _proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


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


def _remove_engine_dir(root_fd: int, name: str, *, reclaim: bool) -> bool:
    """Delete ``name`` below the root (True once it is gone); the caller made its uid dead.

    ``reclaim``: first take the directory back from the engine's account, so nothing but root
    can even traverse it. rmtree works through directory fds and never follows a symlink.
    """
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        os.unlink(name, dir_fd=root_fd)  # not a directory (we only ever make directories)
        return True
    try:
        if reclaim:
            os.fchown(fd, os.geteuid(), os.getegid())
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    shutil.rmtree(name, dir_fd=root_fd, ignore_errors=True)
    try:
        os.lstat(name, dir_fd=root_fd)
    except FileNotFoundError:
        return True
    return False


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


# --------------------------------------------------------------------------- the janitor


_old_janitors: list[subprocess.Popen] = []


class _Janitor:
    """The owner's side of the janitor: a socket only we hold, and the janitor process.

    Messages (one per SEQPACKET datagram): ``engine NAME UID GID`` (with the slot's lock fd
    attached), ``pid NAME PID START`` and ``gone NAME``. At EOF the janitor cleans up whatever
    was not reported gone.
    """

    def __init__(self, root: Path, root_fd: int, owns_root: bool) -> None:
        for old in list(_old_janitors):
            if old.poll() is not None:
                _old_janitors.remove(old)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    os.path.abspath(__file__),
                    "--janitor",
                    str(root_fd),
                    "1" if owns_root else "0",
                    str(root),
                ],
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(root_fd,),
                cwd="/",
                env=_child_env(),
                start_new_session=True,  # a Ctrl-C for the terminal must not stop the cleanup
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(5.0)
        self._sock: socket.socket | None = ours

    @property
    def pid(self) -> int:
        return self._process.pid

    def send(self, message: str, fds: Iterable[int] = ()) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            socket.send_fds(sock, [message.encode()], list(fds), socket.MSG_NOSIGNAL)
        except OSError as exc:
            log.warning("the sandbox janitor is gone (%s); cleanup relies on us alone", exc)
            self._forget_socket()

    def _forget_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """EOF for the janitor: it cleans what is left (normally nothing) and exits."""
        self._forget_socket()
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            _old_janitors.append(self._process)  # still cleaning; reaped later


def _janitor_main(argv: list[str]) -> None:
    """The janitor process: wait for the owner's socket to close, then clean up after it."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    root_fd, owns_root, root_path = int(argv[0]), argv[1] == "1", argv[2]
    sock = socket.socket(fileno=0)
    engines: dict[str, dict[str, Any]] = {}
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 4096, 4)
        except OSError:
            break
        if not data:
            for fd in fds:
                os.close(fd)
            break
        words = data.decode(errors="replace").split(" ")
        if words[0] == "engine" and len(words) == 4:
            uid = None if words[2] == "-" else int(words[2])
            gid = None if words[3] == "-" else int(words[3])
            engines[words[1]] = {"uid": uid, "gid": gid, "fds": list(fds), "pid": None}
            continue
        for fd in fds:
            os.close(fd)
        if words[0] == "pid" and len(words) == 4 and words[1] in engines:
            engines[words[1]]["pid"] = (int(words[2]), int(words[3]))
        elif words[0] == "gone" and len(words) == 2:
            for fd in engines.pop(words[1], {}).get("fds", []):
                os.close(fd)
    for name, engine in engines.items():
        try:
            if engine["uid"] is not None:
                _reap_uid(engine["uid"], engine["gid"])
            elif engine["pid"] is not None:
                pid, start = engine["pid"]
                if _proc_start_time(pid) == start:  # still the engine we were told about
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
            _remove_engine_dir(root_fd, name, reclaim=engine["uid"] is not None)
        except Exception:  # keep going: the other engines still need cleaning
            pass
    if owns_root:
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(root_fd), os.lstat(root_path)):
                shutil.rmtree(root_path, ignore_errors=True)


# --------------------------------------------------------------------------- readiness checks


async def check_postgres_login(
    *,
    host: str,
    port: int,
    user: str,
    dbname: str,
    password: str,
    psql: Path | None = None,
    timeout: float = 5.0,
) -> bool:
    """True if ``psql`` can log in with these credentials and run SELECT 1. Never raises.

    Everything goes through the environment: the password stays out of argv, and names are
    taken literally (``-d`` would parse a name containing '=' as a connection string).
    """
    try:
        program = psql or find_binaries("postgres")["psql"]
        env = _child_env(
            PGHOST=host,
            PGPORT=str(port),
            PGUSER=user,
            PGDATABASE=dbname,
            PGPASSWORD=password,
            PGPASSFILE=os.devnull,
            PGCONNECT_TIMEOUT=str(max(2, int(timeout))),
            PGSSLMODE="disable",
        )
        code, out = await _run(
            [str(program), "-X", "-w", "-q", "-A", "-t", "-c", "SELECT 1"],
            cwd=None,
            run_as=_Account(),
            env=env,
            timeout=timeout,
        )
        return code == 0 and out.strip() == "1"
    except Exception:
        return False


def _resp(*parts: str) -> bytes:
    """A Redis command in RESP array form (binary-safe, so any password works)."""
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def check_redis_login(*, host: str, port: int, password: str, timeout: float = 3.0) -> bool:
    """True if AUTH with this password succeeds and PING answers +PONG. Never raises."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(_resp("AUTH", password) + _resp("PING"))
        await writer.drain()
        auth = await asyncio.wait_for(reader.readline(), timeout)
        pong = await asyncio.wait_for(reader.readline(), timeout)
        return auth == b"+OK\r\n" and pong == b"+PONG\r\n"
    except Exception:
        return False
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# --------------------------------------------------------------------------- engine homes


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

        def cleanup(done: concurrent.futures.Future) -> None:
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


# --------------------------------------------------------------------------- running engines


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
    _process: subprocess.Popen = field(repr=False)
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


# --------------------------------------------------------------------------- the manager


def _check_name(what: str, value: str, forbidden: str = "\0\r\n") -> None:
    if not isinstance(value, str) or not value or len(value.encode(errors="replace")) > 63:
        raise ValueError(f"{what} must be a non-empty string of at most 63 bytes")
    if any(ch in value for ch in forbidden):
        raise ValueError(f"{what} must not contain any of {forbidden!r}")


def _check_password(password: str) -> None:
    # One line of redis.conf / one single-user-mode statement: no line breaks, no NUL.
    if not isinstance(password, str) or not password or any(ch in password for ch in "\0\r\n"):
        raise ValueError("password must be a non-empty string without NUL or line breaks")
    try:
        password.encode()
    except UnicodeEncodeError:
        raise ValueError("password must be encodable as UTF-8") from None


def _redis_config(*, port: int, directory: Path, password: str, version: str) -> str:
    lines = [
        f"bind {HOST}",
        f"port {port}",
        "protected-mode yes",
        "daemonize no",
        "supervised no",
        f"dir {_redis_quote(str(directory))}",
        'logfile ""',
        'save ""',
        "appendonly no",
    ]
    if _version_key(version)[0] >= 7:
        lines += [
            "enable-protected-configs no",
            "enable-debug-command no",
            "enable-module-command no",
        ]
    else:  # no such switches before 7: take the commands away
        lines += [f'rename-command {command} ""' for command in ("CONFIG", "DEBUG", "MODULE")]
    lines += [f"requirepass {_redis_quote(password)}", ""]
    return "\n".join(lines)


def _superuser_for(db_user: str) -> str:
    return _SUPERUSER if db_user != _SUPERUSER else _SUPERUSER + "_"


_live: set[Engines] = set()


@atexit.register
def _close_all_at_exit() -> None:
    for engines in list(_live):
        if engines._owner_pid == os.getpid():  # not in a forked child: those are not ours
            with contextlib.suppress(Exception):
                engines.close_sync()


def _forget_janitors_in_child() -> None:
    """A forked child must not keep the janitor from seeing the owner's EOF."""
    for engines in list(_live):
        janitor = engines._janitor
        if janitor is not None:
            with contextlib.suppress(Exception):
                janitor._forget_socket()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_janitors_in_child)


class Engines:
    """Starts engines under one root directory and stops them all on close (or at exit)."""

    def __init__(self, root: Path | None = None) -> None:
        """``root`` holds every engine's directory; by default a fresh ``redu-sandbox-*`` temp dir.

        A root we create is removed on close; a given, existing one is kept (only our engine
        dirs inside it are removed). As root, the root dir is made 0711 and must be root's and
        writable by nobody else, and its parents must be traversable by the engine accounts.
        """
        self._isolated = os.geteuid() == 0
        if root is None or self._isolated:
            _remove_stale_roots()
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix=_ROOT_PREFIX))
            self._owns_root = True
        else:
            self.root = Path(root)
            self._owns_root = not self.root.exists()  # never delete a directory we did not make
            self.root.mkdir(parents=True, exist_ok=True)
            if self._isolated:
                _check_secure_dir(self.root)
        self._root_fd = os.open(self.root, _DIR_FLAGS)
        if self._isolated:
            # mkdtemp makes 0700; the engine accounts must be able to traverse it.
            os.fchmod(self._root_fd, 0o711)
        if root is None:
            start = _proc_start_time(os.getpid())
            _write_new_file(self._root_fd, _OWNER_FILE, f"{os.getpid()} {start or ''}\n")
        self._owner_pid = os.getpid()
        self._engines: list[RunningEngine] = []
        self._counter = itertools.count(1)
        self._ports: set[int] = set()
        self._closed = False
        self._janitor: _Janitor | None = None
        self._janitor_failed = False
        _live.add(self)

    @property
    def engines(self) -> list[RunningEngine]:
        return list(self._engines)

    async def start_postgres(self, *, db_name: str, db_user: str, password: str) -> RunningEngine:
        """initdb a cluster, create db_user (not a superuser) owning db_name, launch postgres.

        Returns once the server process is launched; poll ``is_ready()`` for readiness.
        """
        _check_name("db_name", db_name)
        _check_name("db_user", db_user, forbidden="\0\r\n\"$'\\")
        _check_password(password)
        bins = find_binaries("postgres")
        version = await _binary_version(bins["postgres"])
        verifier = _scram_verifier(password)
        secrets = _secret_forms(password, verifier)
        superuser = _superuser_for(db_user)
        home = await self._new_home("postgres")
        pgdata = home.path / "pgdata"
        try:
            code, out = await _run(
                [
                    str(bins["initdb"]),
                    "-D",
                    str(pgdata),
                    "-U",
                    superuser,
                    # No password for the superuser: it cannot log in over TCP, and nobody
                    # may connect over a unix socket (there is none, and local is 'reject').
                    "--auth-local=reject",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                cwd=home.path,
                run_as=home.account,
                timeout=120,
            )
            if code != 0:
                raise EngineStartError(f"initdb failed (exit {code}): {_tail(out, secrets)}")
            # Single-user mode: no server, no port, no connection needed yet. One statement
            # per line; the password is only ever a verifier.
            user = _sql_ident(db_user)
            statements = [
                f"CREATE ROLE {user} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                f"NOBYPASSRLS PASSWORD '{verifier}';",
                f"ALTER DATABASE postgres OWNER TO {user};"
                if db_name == "postgres"
                else f"CREATE DATABASE {_sql_ident(db_name)} OWNER {user};",
            ]
            code, out = await _run(
                [
                    str(bins["postgres"]),
                    "--single",
                    "-D",
                    str(pgdata),
                    "-c",
                    "exit_on_error=on",
                    "-c",
                    "fsync=off",
                    "postgres",
                ],
                cwd=home.path,
                run_as=home.account,
                stdin="\n".join([*statements, ""]).encode(),
                timeout=60,
            )
            if code != 0:
                raise EngineStartError(
                    f"creating role and database {db_name!r} failed (exit {code}): {_tail(out, secrets)}"
                )
            port = self._pick_port()
            process, output = self._launch(
                [
                    str(bins["postgres"]),
                    "-D",
                    str(pgdata),
                    "-p",
                    str(port),
                    "-c",
                    f"listen_addresses={HOST}",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "shared_buffers=16MB",
                    "-c",
                    "huge_pages=off",
                    "-c",
                    "logging_collector=off",
                    "-c",
                    "password_encryption=scram-sha-256",
                    # Client errors and statements could quote a password: log neither.
                    "-c",
                    "log_min_messages=log",
                    "-c",
                    "log_min_error_statement=panic",
                    "-c",
                    "log_statement=none",
                ],
                home,
                secrets,
            )
        except BaseException:
            home.release()
            raise
        engine = RunningEngine(
            kind="postgres",
            host=HOST,
            port=port,
            actual_version=version,
            data_dir=home.path,
            pid=process.pid,
            uid=home.account.effective_ids[0],
            gid=home.account.effective_ids[1],
            _process=process,
            _log=output,
            _home=home,
            _password=password,
            _user=db_user,
            _dbname=db_name,
            _psql=bins["psql"],
        )
        return await self._adopt(engine)

    async def start_redis(self, *, password: str) -> RunningEngine:
        """Launch redis-server with requirepass and no persistence; its config comes on stdin."""
        _check_password(password)
        binary = find_binaries("redis")["redis-server"]
        version = await _binary_version(binary)
        secrets = _secret_forms(password)
        home = await self._new_home("redis")
        try:
            port = self._pick_port()
            config = _redis_config(port=port, directory=home.path, password=password, version=version)
            process, output = self._launch([str(binary), "-"], home, secrets, stdin=config.encode())
        except BaseException:
            home.release()
            raise
        engine = RunningEngine(
            kind="redis",
            host=HOST,
            port=port,
            actual_version=version,
            data_dir=home.path,
            pid=process.pid,
            uid=home.account.effective_ids[0],
            gid=home.account.effective_ids[1],
            _process=process,
            _log=output,
            _home=home,
            _password=password,
        )
        return await self._adopt(engine)

    async def aclose(self) -> None:
        """Stop every engine started here and remove the root. Idempotent."""
        self._closed = True
        await asyncio.gather(*(engine.stop() for engine in self._engines))
        self._finish_close()

    def close_sync(self) -> None:
        """Like aclose(), but blocking: for atexit and signal handlers."""
        self._closed = True
        for engine in self._engines:  # signal all first, so they shut down in parallel
            engine._request_stop()
        for engine in self._engines:
            engine._stop_sync()
        self._finish_close()

    def _finish_close(self) -> None:
        if self._janitor is not None:
            self._janitor.close()
        if self._owns_root and self._root_fd >= 0:
            with contextlib.suppress(OSError):
                if os.path.samestat(os.fstat(self._root_fd), os.lstat(self.root)):
                    shutil.rmtree(self.root, ignore_errors=True)
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1
        _live.discard(self)

    def _ensure_janitor(self) -> _Janitor | None:
        if self._janitor is None and not self._janitor_failed:
            try:
                if not sys.executable:
                    raise OSError("no Python interpreter to run it with (sys.executable)")
                self._janitor = _Janitor(self.root, self._root_fd, self._owns_root)
            except OSError as exc:
                self._janitor_failed = True
                log.warning(
                    "no sandbox janitor (%s): a killed server may leave engines behind until the next start", exc
                )
        return self._janitor

    async def _new_home(self, kind: str) -> _Home:
        if self._closed:
            raise EngineStartError("the sandbox engines were already closed")
        if self._isolated:
            account = await _in_thread(_acquire_account, _Account.release)
        else:
            account = _Account()
        if self._closed:  # closed while we were waiting for an account
            account.release()
            raise EngineStartError("the sandbox engines were closed while starting")
        name = f"{kind}-{next(self._counter)}"
        home = _Home(name, self.root / name, self._root_fd, account, self._ensure_janitor())
        try:
            home.create()
        except BaseException:
            home.release()
            raise
        return home

    def _pick_port(self) -> int:
        """A port the OS calls free right now, and not one we already handed out."""
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((HOST, 0))
                port = sock.getsockname()[1]
            if port not in self._ports:
                self._ports.add(port)
                return port
        raise EngineStartError("could not find a free port on 127.0.0.1")

    def _launch(
        self, argv: list[str], home: _Home, secrets: tuple[str, ...], stdin: bytes | None = None
    ) -> tuple[subprocess.Popen, _LogTail]:
        """Start a server: its output into a pipe we drain, never into a file."""
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                **_spawn_kwargs(home.account, home.path),
            )
        except OSError as exc:
            os.close(read_fd)
            raise EngineStartError(f"could not run {argv[0]}: {exc.strerror or exc}") from None
        finally:
            os.close(write_fd)
        output = _LogTail(read_fd, secrets, f"{home.name}")
        home.launched(process.pid)
        if stdin is not None:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # it died first: failure() will say why
                process.stdin.write(stdin)
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        return process, output

    async def _adopt(self, engine: RunningEngine) -> RunningEngine:
        if self._closed:  # closed while we were starting it
            await engine.stop()
            raise EngineStartError("the sandbox engines were closed while starting")
        self._engines.append(engine)
        log.info(
            "started %s %s on %s:%s (pid %s, uid %s)",
            engine.kind,
            engine.actual_version,
            engine.host,
            engine.port,
            engine.pid,
            engine.uid,
        )
        return engine


if __name__ == "__main__" and sys.argv[1:2] == ["--janitor"]:
    _janitor_main(sys.argv[2:])
