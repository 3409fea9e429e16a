"""Real PostgreSQL and Redis server processes behind sandbox instances.

``Engines`` starts ``postgres`` / ``redis-server`` on a free 127.0.0.1 port with its data in a
throwaway directory, and tears it down again. It has no dependency on the rest of redu_mcp.

Why things are done the way they are:

* **Running as root.** PostgreSQL refuses to run as root. When the effective uid is 0, every
  engine program (initdb, postgres, redis-server) runs as the existing ``nobody`` user with its
  supplementary groups dropped. We use ``nobody`` rather than creating a dedicated user so that
  this library never edits the system's user database. Each engine directory is chowned to that
  user (mode 0700) and the root directory is made 0711, so the engine can reach its own directory
  without being able to list the others.
* **No orphans.** Engines run in a new session (a Ctrl-C in the terminal does not reach them
  before we can stop them cleanly) and with ``PR_SET_PDEATHSIG=SIGKILL``, so the kernel kills them
  if the *thread* that started them dies — normally the event loop's thread, i.e. for the life of
  the process. An atexit hook stops whatever is still running and removes the directories. A
  SIGKILLed owner cannot run that hook, so a new ``Engines()`` with the default root removes
  leftover ``redu-sandbox-*`` directories whose owner process is gone.
* **Passwords** never reach argv, logs or exceptions: initdb reads it from ``--pwfile`` (0600,
  deleted right after), redis from its 0600 config file, psql from ``PGPASSWORD``. PostgreSQL is
  told not to log client errors or statements (a failed ``ALTER ROLE ... PASSWORD`` would
  otherwise land in the log), and every log excerpt we return is redacted anyway.
* **Non-blocking.** Short helper programs (initdb, psql, ``--version``) run through asyncio's
  subprocess API. The long-running servers are launched with ``subprocess.Popen`` — the same
  fork+exec asyncio does internally, so it returns at once — because a Popen can be polled and
  reaped both from async code and from the synchronous ``close_sync()``, whichever event loop
  (or none: atexit) is around at the time.
* The database user given to ``start_postgres`` is the cluster's bootstrap superuser (initdb
  ``-U``), so it owns its database and can do anything a sandbox client might want.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import itertools
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
#: The account engines run as when we are root (PostgreSQL will not run as root).
UNPRIVILEGED_USER = "nobody"
#: Seconds an engine gets to shut down cleanly before it is SIGKILLed.
STOP_GRACE = 5.0

_PROGRAMS: dict[str, tuple[str, ...]] = {
    "postgres": ("initdb", "postgres", "psql"),
    "redis": ("redis-server",),
}
_APT_PACKAGE = {"postgres": "postgresql", "redis": "redis-server"}
_LOG_NAME = "engine.log"
_OWNER_FILE = "owner.pid"
_ROOT_PREFIX = "redu-sandbox-"
_REDACTED = "********"


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
        f"missing program(s) {', '.join(names)}: install the Debian package {package!r} "
        f"(apt-get install -y {package})"
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
    absent = [
        name
        for name in _PROGRAMS["postgres"]
        if not any(_is_executable(d / name) for d in dirs)
    ]
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
    for kind in ("postgres", "redis"):
        try:
            find_binaries(kind)  # type: ignore[arg-type]
        except EngineUnavailable as exc:
            problems.append(str(exc))
    if problems:
        raise EngineUnavailable("; ".join(problems))


_versions: dict[Path, str] = {}


async def _binary_version(binary: Path) -> str:
    """The version the binary reports, e.g. '15.18' or '7.0.15' (cached per path)."""
    if binary not in _versions:
        code, out = await _run([str(binary), "--version"], cwd=None, run_as=_RunAs(), timeout=30)
        match = re.search(r"\d+(?:\.\d+)*", out)
        if code != 0 or match is None:
            raise EngineStartError(f"{binary} --version failed (exit {code}): {out.strip()[-200:]}")
        _versions[binary] = match.group(0)
    return _versions[binary]


# --------------------------------------------------------------------------- spawning processes


@dataclass(frozen=True)
class _RunAs:
    """Which account child processes run as; empty means 'as ourselves'."""

    uid: int | None = None
    gid: int | None = None

    def popen_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        # extra_groups=[] drops root's supplementary groups, which user=/group= alone keep.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid if self.gid is not None else -1)


def _engine_account() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs()
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise EngineUnavailable(
            f"running as root needs the unprivileged user {UNPRIVILEGED_USER!r} "
            "(PostgreSQL refuses to run as root), and it does not exist"
        ) from None
    return _RunAs(entry.pw_uid, entry.pw_gid)


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


def _spawn_kwargs(run_as: _RunAs, cwd: Path | None, env: dict[str, str] | None = None) -> dict:
    return {
        "cwd": cwd,
        "env": env if env is not None else _child_env(),
        "start_new_session": True,
        "preexec_fn": _die_with_us(),
        **run_as.popen_kwargs(),
    }


async def _run(
    argv: list[str],
    *,
    cwd: Path | None,
    run_as: _RunAs,
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
    except BaseException:  # timeout or cancellation: do not leave it running
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def _redact(text: str, password: str) -> str:
    if not password:
        return text
    for form in (password, _redis_quote(password)[1:-1]):
        text = text.replace(form, _REDACTED)
    return text


def _tail(text: str, password: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return _redact("\n".join(kept), password) or "(no output)"


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
            PGCONNECT_TIMEOUT=str(max(2, int(timeout))),
            PGSSLMODE="disable",
        )
        code, out = await _run(
            [str(program), "-X", "-w", "-q", "-A", "-t", "-c", "SELECT 1"],
            cwd=None,
            run_as=_RunAs(),
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


async def check_redis_login(
    *, host: str, port: int, password: str, timeout: float = 3.0
) -> bool:
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


# --------------------------------------------------------------------------- running engines


@dataclass(eq=False)
class RunningEngine:
    """One launched server process, its port and its directory."""

    kind: Engine
    host: str
    port: int
    actual_version: str
    #: The engine's own directory (data, unix socket, config, log); removed by stop().
    data_dir: Path
    pid: int
    _process: subprocess.Popen = field(repr=False)
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
        """Why the process died (with the tail of its log), or None while it runs / once stopped."""
        if self._stop_requested:
            return None
        code = self._process.poll()
        if code is None:
            return None
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return f"{self.kind} exited ({how}): {self._log_tail()}"

    async def stop(self) -> None:
        """Terminate (SIGKILL after STOP_GRACE), wait, remove data_dir. Idempotent."""
        self._request_stop()
        while not self._reaped():
            await asyncio.sleep(0.05)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _stop_sync(self) -> None:
        self._request_stop()
        while not self._reaped():
            time.sleep(0.05)
        shutil.rmtree(self.data_dir, ignore_errors=True)

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
        # process group (start_new_session), so this reaches anything it forked too.
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def _log_tail(self) -> str:
        try:
            with open(self.data_dir / _LOG_NAME, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 4096))
                text = fh.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return _tail(text, self._password)


# --------------------------------------------------------------------------- the manager


def _check_name(what: str, value: str, forbidden: str = "\0\r\n") -> None:
    if not isinstance(value, str) or not value or len(value.encode()) > 63:
        raise ValueError(f"{what} must be a non-empty string of at most 63 bytes")
    if any(ch in value for ch in forbidden):
        raise ValueError(f"{what} must not contain any of {forbidden!r}")


def _check_password(password: str) -> None:
    # initdb's --pwfile reads one line, so a line break would silently truncate it.
    if not isinstance(password, str) or not password or any(ch in password for ch in "\0\r\n"):
        raise ValueError("password must be a non-empty string without NUL or line breaks")


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _redis_quote(value: str) -> str:
    """A redis.conf string: every byte \\x-escaped, so no value can break the line."""
    return '"' + "".join(f"\\x{b:02x}" for b in value.encode()) + '"'


def _write_private(path: Path, text: str, run_as: _RunAs) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    run_as.chown(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_roots() -> None:
    """Remove default roots whose owning process died without cleaning up (e.g. SIGKILL)."""
    for root in Path(tempfile.gettempdir()).glob(_ROOT_PREFIX + "*"):
        try:
            owner = int((root / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not _pid_alive(owner):
            log.info("removing stale sandbox directory %s", root)
            shutil.rmtree(root, ignore_errors=True)


_live: set[Engines] = set()


@atexit.register
def _close_all_at_exit() -> None:
    for engines in list(_live):
        if engines._owner_pid == os.getpid():  # not in a forked child: those are not ours
            with contextlib.suppress(Exception):
                engines.close_sync()


class Engines:
    """Starts engines under one root directory and stops them all on close (or at exit)."""

    def __init__(self, root: Path | None = None) -> None:
        """``root`` holds every engine's directory; by default a fresh ``redu-sandbox-*`` temp dir.

        A root we create is removed on close; a given, existing one is kept (only our engine
        dirs inside it are removed). As root, the root dir is made 0711 and its parents must
        be traversable by the unprivileged engine user.
        """
        if root is None:
            _remove_stale_roots()
            self.root = Path(tempfile.mkdtemp(prefix=_ROOT_PREFIX))
            self._owns_root = True
            (self.root / _OWNER_FILE).write_text(str(os.getpid()))
        else:
            self.root = Path(root)
            self._owns_root = not self.root.exists()  # never delete a directory we did not make
            self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # mkdtemp makes 0700; the unprivileged engine user must be able to traverse it.
            self.root.chmod(0o711)
        self._owner_pid = os.getpid()
        self._engines: list[RunningEngine] = []
        self._counter = itertools.count(1)
        self._ports: set[int] = set()
        self._closed = False
        _live.add(self)

    @property
    def engines(self) -> list[RunningEngine]:
        return list(self._engines)

    async def start_postgres(self, *, db_name: str, db_user: str, password: str) -> RunningEngine:
        """initdb a cluster whose superuser is db_user, create db_name owned by it, launch postgres.

        Returns once the server process is launched; poll ``is_ready()`` for readiness.
        """
        _check_name("db_name", db_name)
        # initdb refuses these characters in the bootstrap superuser's name.
        _check_name("db_user", db_user, forbidden="\0\r\n\"$'\\")
        _check_password(password)
        bins = find_binaries("postgres")
        version = await _binary_version(bins["postgres"])
        run_as = _engine_account()
        engine_dir = self._new_engine_dir("postgres", run_as)
        pgdata = engine_dir / "pgdata"
        try:
            pwfile = engine_dir / "pwfile"
            _write_private(pwfile, password + "\n", run_as)
            try:
                code, out = await _run(
                    [
                        str(bins["initdb"]),
                        "-D", str(pgdata),
                        "-U", db_user,
                        f"--pwfile={pwfile}",
                        "--auth=scram-sha-256",
                        "-E", "UTF8",
                        "--locale=C",
                        "--no-sync",
                        "--no-instructions",
                    ],
                    cwd=engine_dir,
                    run_as=run_as,
                    timeout=120,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            if code != 0:
                raise EngineStartError(f"initdb failed (exit {code}): {_tail(out, password)}")
            if db_name != "postgres":  # initdb already made 'postgres', owned by db_user
                # Single-user mode: no server, no port, no connection needed yet.
                sql = f"CREATE DATABASE {_sql_ident(db_name)} OWNER {_sql_ident(db_user)};\n"
                code, out = await _run(
                    [
                        str(bins["postgres"]), "--single", "-D", str(pgdata),
                        "-c", "exit_on_error=on", "-c", "fsync=off", "postgres",
                    ],
                    cwd=engine_dir,
                    run_as=run_as,
                    stdin=sql.encode(),
                    timeout=60,
                )
                if code != 0:
                    reason = _tail(out, password)
                    raise EngineStartError(
                        f"creating database {db_name!r} failed (exit {code}): {reason}"
                    )
            port = self._pick_port()
            process = self._launch(
                [
                    str(bins["postgres"]),
                    "-D", str(pgdata),
                    "-p", str(port),
                    "-c", f"listen_addresses={HOST}",
                    "-c", f"unix_socket_directories={engine_dir}",
                    "-c", "fsync=off",
                    "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off",
                    "-c", "shared_buffers=16MB",
                    "-c", "huge_pages=off",
                    "-c", "logging_collector=off",
                    # Client errors and statements could quote a password: log neither.
                    "-c", "log_min_messages=log",
                    "-c", "log_min_error_statement=panic",
                    "-c", "log_statement=none",
                ],
                engine_dir,
                run_as,
            )
        except BaseException:
            shutil.rmtree(engine_dir, ignore_errors=True)
            raise
        engine = RunningEngine(
            kind="postgres",
            host=HOST,
            port=port,
            actual_version=version,
            data_dir=engine_dir,
            pid=process.pid,
            _process=process,
            _password=password,
            _user=db_user,
            _dbname=db_name,
            _psql=bins["psql"],
        )
        return await self._adopt(engine)

    async def start_redis(self, *, password: str) -> RunningEngine:
        """Launch redis-server with requirepass (from a 0600 config file) and no persistence."""
        _check_password(password)
        binary = find_binaries("redis")["redis-server"]
        version = await _binary_version(binary)
        run_as = _engine_account()
        engine_dir = self._new_engine_dir("redis", run_as)
        try:
            port = self._pick_port()
            config = engine_dir / "redis.conf"
            _write_private(
                config,
                "\n".join(
                    [
                        f"bind {HOST}",
                        f"port {port}",
                        "protected-mode yes",
                        "daemonize no",
                        f"dir {_redis_quote(str(engine_dir))}",
                        'logfile ""',
                        'save ""',
                        "appendonly no",
                        f"requirepass {_redis_quote(password)}",
                        "",
                    ]
                ),
                run_as,
            )
            process = self._launch([str(binary), str(config)], engine_dir, run_as)
        except BaseException:
            shutil.rmtree(engine_dir, ignore_errors=True)
            raise
        engine = RunningEngine(
            kind="redis",
            host=HOST,
            port=port,
            actual_version=version,
            data_dir=engine_dir,
            pid=process.pid,
            _process=process,
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
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
        _live.discard(self)

    def _new_engine_dir(self, kind: str, run_as: _RunAs) -> Path:
        if self._closed:
            raise EngineStartError("the sandbox engines were already closed")
        path = self.root / f"{kind}-{next(self._counter)}"
        path.mkdir(mode=0o700)
        run_as.chown(path)
        return path

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

    def _launch(self, argv: list[str], engine_dir: Path, run_as: _RunAs) -> subprocess.Popen:
        log_fd = os.open(engine_dir / _LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                **_spawn_kwargs(run_as, engine_dir),
            )
        except OSError as exc:
            raise EngineStartError(f"could not run {argv[0]}: {exc.strerror or exc}") from None
        finally:
            os.close(log_fd)

    async def _adopt(self, engine: RunningEngine) -> RunningEngine:
        if self._closed:  # closed while we were starting it
            await engine.stop()
            raise EngineStartError("the sandbox engines were closed while starting")
        self._engines.append(engine)
        log.info("started %s %s on %s:%s (pid %s)", engine.kind, engine.actual_version,
                 engine.host, engine.port, engine.pid)
        return engine
