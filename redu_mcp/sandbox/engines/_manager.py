"""``Engines``: starts engines under one root directory and stops them all on close (or at exit).

It checks the arguments, gets each engine a home (an account and a directory), prepares the
server (initdb and single-user mode for PostgreSQL; Redis gets its configuration on stdin) and
launches it with ``subprocess.Popen`` — the same fork+exec asyncio does internally, so it returns
at once — with its output in a pipe we drain, never in a file. Whatever still runs is stopped by
``aclose()`` / ``close_sync()``, else by an atexit hook, else (if we were killed) by the janitor.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._accounts import _Account, _acquire_account
from ._binaries import Engine, _binary_version, find_binaries
from ._directories import _OWNER_FILE, _ROOT_PREFIX, _check_secure_dir, _remove_stale_roots, _write_new_file
from ._errors import EngineStartError
from ._homes import _Home, _in_thread
from ._janitor import _DIR_FLAGS, _Janitor, _proc_start_time
from ._output import _LogTail, _tail
from ._running import RunningEngine
from ._secrets import _scram_verifier, _secret_forms
from ._server_config import (
    HOST,
    _initdb_argv,
    _postgres_argv,
    _redis_config,
    _role_statements,
    _single_user_argv,
    _superuser_for,
)
from ._spawn import _run, _spawn_kwargs

log = logging.getLogger("redu_mcp.sandbox.engines")  # one logger for the package, like httpx2's


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


def _running(
    kind: Engine,
    home: _Home,
    port: int,
    version: str,
    process: subprocess.Popen[bytes],
    output: _LogTail,
    password: str,
    **login: Any,
) -> RunningEngine:
    """The launched engine as a ``RunningEngine`` (``login``: what its readiness check needs)."""
    uid, gid = home.account.effective_ids
    return RunningEngine(
        kind=kind,
        host=HOST,
        port=port,
        actual_version=version,
        data_dir=home.path,
        pid=process.pid,
        uid=uid,
        gid=gid,
        _process=process,
        _log=output,
        _home=home,
        _password=password,
        **login,
    )


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

    async def version_for(self, kind: Engine, version: str | None = None) -> str:
        """The full version an engine of ``kind`` started with ``version`` would run, e.g. '15.18'."""
        bins = find_binaries(kind, version)
        return await _binary_version(bins["postgres" if kind == "postgres" else "redis-server"])

    async def start_postgres(
        self, *, db_name: str, db_user: str, password: str, version: str | None = None
    ) -> RunningEngine:
        """initdb a cluster, create db_user (not a superuser) owning db_name, launch postgres: the
        requested major ``version`` when it is installed, else the default (``find_binaries``).

        Returns once the server process is launched; poll ``is_ready()`` for readiness.
        """
        _check_name("db_name", db_name)
        _check_name("db_user", db_user, forbidden="\0\r\n\"$'\\")
        _check_password(password)
        bins = find_binaries("postgres", version)
        version = await _binary_version(bins["postgres"])
        verifier = _scram_verifier(password)
        secrets = _secret_forms(password, verifier)
        superuser = _superuser_for(db_user)
        home = await self._new_home("postgres")
        pgdata = home.path / "pgdata"
        try:
            code, out = await _run(
                _initdb_argv(bins["initdb"], pgdata, superuser),
                cwd=home.path,
                run_as=home.account,
                timeout=120,
            )
            if code != 0:
                raise EngineStartError(f"initdb failed (exit {code}): {_tail(out, secrets)}")
            code, out = await _run(
                _single_user_argv(bins["postgres"], pgdata),
                cwd=home.path,
                run_as=home.account,
                stdin=_role_statements(db_name=db_name, db_user=db_user, verifier=verifier).encode(),
                timeout=60,
            )
            if code != 0:
                raise EngineStartError(
                    f"creating role and database {db_name!r} failed (exit {code}): {_tail(out, secrets)}"
                )
            port = self._pick_port()
            process, output = self._launch(_postgres_argv(bins["postgres"], pgdata, port), home, secrets)
        except BaseException:
            home.release()
            raise
        return await self._adopt(
            _running("postgres", home, port, version, process, output, password,
                     _user=db_user, _dbname=db_name, _psql=bins["psql"])
        )  # fmt: skip

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
        return await self._adopt(_running("redis", home, port, version, process, output, password))

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
                port: int = sock.getsockname()[1]
            if port not in self._ports:
                self._ports.add(port)
                return port
        raise EngineStartError("could not find a free port on 127.0.0.1")

    def _launch(
        self, argv: list[str], home: _Home, secrets: tuple[str, ...], stdin: bytes | None = None
    ) -> tuple[subprocess.Popen[bytes], _LogTail]:
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
