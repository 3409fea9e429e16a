"""Real PostgreSQL / Redis processes behind the sandbox: start, use, stop, and never leak."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from redu_mcp.sandbox.engines import (
    Engine,
    Engines,
    EngineStartError,
    EngineUnavailable,
    RunningEngine,
    _binaries,
    _janitor,
    _manager,
    _running,
    check_engines_available,
    check_postgres_login,
    check_redis_login,
    find_binaries,
)

# Quotes, backslash, spaces and non-ASCII: exercises every escaping and encoding path.
PASSWORD = "pä ss'w\"o\\rd-$x€"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _unavailable(kind: Engine) -> str | None:
    try:
        find_binaries(kind)
    except EngineUnavailable as exc:
        return str(exc)
    return None


needs_postgres = pytest.mark.skipif(
    _unavailable("postgres") is not None,
    reason=f"PostgreSQL binaries absent: {_unavailable('postgres')} (see .ci/install-os-packages.sh)",
)
needs_redis = pytest.mark.skipif(
    _unavailable("redis") is not None,
    reason=f"Redis binaries absent: {_unavailable('redis')} (see .ci/install-os-packages.sh)",
)
_both_missing = "; ".join(m for m in (_unavailable("postgres"), _unavailable("redis")) if m)
needs_both = pytest.mark.skipif(
    bool(_both_missing),
    reason=f"PostgreSQL/Redis binaries absent: {_both_missing} (see .ci/install-os-packages.sh)",
)


# ----------------------------------------------------------------------------- helpers


def pid_alive(pid: int) -> bool:
    """A zombie counts as gone: nothing runs and nothing is listening."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def port_free(port: int) -> bool:
    """Could a new server listen on 127.0.0.1:port right now?"""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


async def wait_ready(engine: RunningEngine, timeout: float = 30.0) -> float:
    """Poll is_ready() like the sandbox does; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await engine.is_ready():
            return time.monotonic() - start
        assert engine.failure() is None, engine.failure()
        await asyncio.sleep(0.05)
    pytest.fail(f"{engine.kind} not ready after {timeout}s: {engine.failure()}")


def assert_gone(engine: RunningEngine) -> None:
    assert not pid_alive(engine.pid)
    assert port_free(engine.port)
    assert not engine.data_dir.exists()


def assert_secret_absent(secret: str, text: str | bytes, where: str) -> None:
    """Like ``assert secret not in text``, but a failure does not print the secret."""
    needle = secret.encode() if isinstance(text, bytes) else secret
    leaked = needle in text
    assert not leaked, f"the password leaked into {where}"


def engine_pids(engine: RunningEngine) -> list[int]:
    """The engine and every other process of its account (just its own pid without root)."""
    if engine.uid == os.getuid():
        return [engine.pid]
    return _janitor._pids_of_uid(engine.uid)


def files_below(directory: Path):
    """Every regular file below ``directory``, never following a symlink."""
    for base, _dirs, names in os.walk(directory):
        for name in names:
            path = Path(base) / name
            if path.is_file() and not path.is_symlink():
                yield path


def assert_no_password_leak(engine: RunningEngine, password: str) -> None:
    for pid in engine_pids(engine):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert_secret_absent(password, cmdline, f"the command line of pid {pid}")
    assert_secret_absent(password, "\n".join(engine._log._lines), "the engine's output")
    assert_secret_absent(password, engine._log_tail(), "the engine's output tail")
    assert_secret_absent(password, repr(engine), "repr(engine)")
    # No secret file at all: Redis got its config on stdin, PostgreSQL only a verifier.
    for path in files_below(engine.data_dir):
        with contextlib.suppress(OSError):
            assert_secret_absent(password, path.read_bytes(), str(path))


# ----------------------------------------------------------------------------- finding binaries


def test_check_engines_available_names_missing_programs(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_binaries, "POSTGRES_LIB_DIR", tmp_path / "no-postgresql-here")
    with pytest.raises(EngineUnavailable) as info:
        check_engines_available()
    message = str(info.value)
    assert "redis-server" in message and "apt-get install -y redis-server" in message
    assert "initdb" in message and "apt-get install -y postgresql" in message


def test_find_binaries_redis_missing_only(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineUnavailable, match="redis-server"):
        find_binaries("redis")


def fake_postgres(directory: Path, version: str) -> Path:
    """initdb, postgres and psql that only say which version they are."""
    directory.mkdir(parents=True)
    for name in ("initdb", "postgres", "psql"):
        (directory / name).write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n")
        (directory / name).chmod(0o755)
    return directory


def test_find_binaries_prefers_newest_postgres(monkeypatch, tmp_path):
    for version in ("9.6", "13", "16"):
        fake_postgres(tmp_path / version / "bin", f"{version}.1")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(_binaries, "POSTGRES_LIB_DIR", tmp_path)
    found = find_binaries("postgres")
    assert found["initdb"] == tmp_path / "16" / "bin" / "initdb"
    assert found["postgres"].parent == found["initdb"].parent


async def test_the_requested_postgres_runs_when_it_is_installed_and_the_version_says_which(monkeypatch, tmp_path):
    lib = tmp_path / "lib"
    for version in ("14", "16"):
        fake_postgres(lib / version / "bin", f"{version}.7")
    on_path = fake_postgres(tmp_path / "on-path", "15.3")  # an explicit choice beats a guess, not a request
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setattr(_binaries, "POSTGRES_LIB_DIR", lib)
    assert find_binaries("postgres", "14")["postgres"] == lib / "14" / "bin" / "postgres"
    assert find_binaries("postgres", "13")["postgres"] == on_path / "postgres"  # not installed: the default
    assert find_binaries("postgres")["postgres"] == on_path / "postgres"
    manager = Engines()
    try:
        assert await manager.version_for("postgres", "14") == "14.7"
        assert await manager.version_for("postgres", "13") == "15.3"  # what would really run
    finally:
        await manager.aclose()


def test_bad_arguments_are_rejected_without_echoing_the_password():
    manager = Engines()
    try:
        with pytest.raises(ValueError) as info:
            asyncio.run(manager.start_redis(password="line\nbreak-secret"))
        assert_secret_absent("break-secret", str(info.value), "the exception")
        with pytest.raises(ValueError):
            asyncio.run(manager.start_postgres(db_name="db", db_user="", password="x"))
    finally:
        manager.close_sync()


# ----------------------------------------------------------------------------- real engines


@needs_postgres
async def test_postgres_start_use_stop(engines):
    pg = await engines.start_postgres(db_name="app db", db_user="app_user", password=PASSWORD)
    assert pg.host == "127.0.0.1" and pg.kind == "postgres"
    assert pg.actual_version[0].isdigit() and "." in pg.actual_version
    await wait_ready(pg)
    assert_no_password_leak(pg, PASSWORD)

    async with await psycopg.AsyncConnection.connect(
        host=pg.host, port=pg.port, dbname="app db", user="app_user", password=PASSWORD
    ) as conn:
        await conn.execute("CREATE TABLE t (k text PRIMARY KEY, v int)")
        await conn.execute("INSERT INTO t VALUES ('a', 1), ('b', 2)")
        await conn.commit()
        cur = await conn.execute("SELECT sum(v), current_database(), current_user FROM t")
        assert await cur.fetchone() == (3, "app db", "app_user")
        cur = await conn.execute("SHOW listen_addresses")
        assert await cur.fetchone() == ("127.0.0.1",)

    # A client that is still connected must not hold up stop() (no "smart" shutdown wait).
    idle = await psycopg.AsyncConnection.connect(
        host=pg.host, port=pg.port, dbname="app db", user="app_user", password=PASSWORD
    )
    started = time.monotonic()
    await pg.stop()
    assert time.monotonic() - started < _running.STOP_GRACE
    assert_gone(pg)
    await idle.close()
    await pg.stop()  # idempotent
    assert pg.failure() is None
    assert not await pg.is_ready()


@needs_redis
async def test_redis_start_use_stop(engines):
    rd = await engines.start_redis(password=PASSWORD)
    assert rd.kind == "redis" and rd.actual_version.count(".") == 2
    await wait_ready(rd)
    assert_no_password_leak(rd, PASSWORD)

    client = aioredis.Redis(host=rd.host, port=rd.port, password=PASSWORD)
    try:
        await client.set("greeting", "hello")
        assert await client.get("greeting") == b"hello"
        assert await client.config_get("save") == {"save": ""}
        assert (await client.config_get("appendonly"))["appendonly"] == "no"
    finally:
        await client.aclose()

    await rd.stop()
    assert_gone(rd)
    await rd.stop()
    assert rd.failure() is None


@needs_both
async def test_wrong_password_is_rejected(engines):
    pg = await engines.start_postgres(db_name="appdb", db_user="app", password=PASSWORD)
    rd = await engines.start_redis(password=PASSWORD)
    await asyncio.gather(wait_ready(pg), wait_ready(rd))

    assert await check_postgres_login(host=pg.host, port=pg.port, user="app", dbname="appdb", password=PASSWORD)
    assert not await check_postgres_login(host=pg.host, port=pg.port, user="app", dbname="appdb", password="wrong")
    assert await check_redis_login(host=rd.host, port=rd.port, password=PASSWORD)
    assert not await check_redis_login(host=rd.host, port=rd.port, password="wrong")

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        await psycopg.AsyncConnection.connect(host=pg.host, port=pg.port, dbname="appdb", user="app", password="wrong")
    client = aioredis.Redis(host=rd.host, port=rd.port, password="wrong", retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await client.get("k")
    finally:
        await client.aclose()
    # The failed logins must not have put anything secret in the logs.
    assert_no_password_leak(pg, PASSWORD)


@needs_both
@pytest.mark.parametrize("closer", ["aclose", "close_sync"])
async def test_close_cleans_up_everything(closer):
    manager = Engines()
    pg = await manager.start_postgres(db_name="postgres", db_user="postgres", password=PASSWORD)
    rd = await manager.start_redis(password=PASSWORD)
    await asyncio.gather(wait_ready(pg), wait_ready(rd))
    if closer == "aclose":
        await manager.aclose()
    else:
        manager.close_sync()
    assert_gone(pg)
    assert_gone(rd)
    assert not manager.root.exists()
    await manager.aclose()  # idempotent
    manager.close_sync()
    with pytest.raises(EngineStartError):
        await manager.start_redis(password=PASSWORD)


@pytest.mark.parametrize(
    "kind",
    [pytest.param("postgres", marks=needs_postgres), pytest.param("redis", marks=needs_redis)],
)
async def test_port_already_taken_is_reported(engines, monkeypatch, kind):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        monkeypatch.setattr(engines, "_pick_port", lambda: blocker.getsockname()[1])
        if kind == "postgres":
            engine = await engines.start_postgres(db_name="d", db_user="u", password=PASSWORD)
        else:
            engine = await engines.start_redis(password=PASSWORD)
        deadline = time.monotonic() + 15
        while engine.failure() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    reason = engine.failure()
    assert reason is not None and "already in use" in reason, reason
    assert_secret_absent(PASSWORD, reason, "failure()")
    assert not await engine.is_ready()
    await engine.stop()
    assert not engine.data_dir.exists()


@needs_redis
async def test_bogus_binary_is_a_start_error(engines, monkeypatch, tmp_path):
    bogus = tmp_path / "redis-server"
    bogus.write_text("not a program")  # exists, but is not executable
    monkeypatch.setattr(_manager, "find_binaries", lambda kind, version=None: {"redis-server": bogus})
    with pytest.raises(EngineStartError, match=r"could not run .*redis-server") as info:
        await engines.start_redis(password=PASSWORD)
    assert_secret_absent(PASSWORD, str(info.value), "the exception")
    assert list(engines.root.glob("redis-*")) == []  # its directory was cleaned up


@needs_redis
async def test_engine_dying_later_is_reported(engines):
    rd = await engines.start_redis(password=PASSWORD)
    await wait_ready(rd)
    os.kill(rd.pid, signal.SIGKILL)
    assert await asyncio.to_thread(wait_until, lambda: rd.failure() is not None)
    assert "signal 9" in rd.failure()
    assert not await rd.is_ready()


# ----------------------------------------------------------------------------- no orphans

CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from redu_mcp.sandbox.engines import Engines

    kind, ending = sys.argv[1], sys.argv[2]

    async def main():
        engines = Engines()
        if kind == "postgres":
            engine = await engines.start_postgres(db_name="d", db_user="u", password="pw")
        else:
            engine = await engines.start_redis(password="pw")
        for _ in range(600):
            if await engine.is_ready():
                break
            await asyncio.sleep(0.05)
        print(json.dumps({"pid": engine.pid, "port": engine.port, "root": str(engines.root),
                          "data_dir": str(engine.data_dir), "uid": engine.uid, "gid": engine.gid,
                          "janitor": engines._janitor.pid, "ready": await engine.is_ready()}),
              flush=True)
        sys.stdin.readline()   # the test looks at the live engine first, then lets us end
        if ending == "exit":
            os._exit(0)        # no atexit, no cleanup: parent-death signal and janitor only
        if ending == "return":
            return             # normal interpreter exit: the atexit hook must clean up
        time.sleep(600)        # "sigkill": the test kills us

    asyncio.run(main())
    """
)


class Owner:
    """A process that owns an Engines with one ready engine, for the test to end however it likes."""

    def __init__(self, kind: str, ending: str, **popen_kwargs) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, kind, ending],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            **popen_kwargs,
        )
        try:
            self.info = json.loads(self.process.stdout.readline())
        except BaseException:
            self.close()
            raise
        assert self.info["ready"]

    def end(self, *, sigkill: bool) -> None:
        self.process.stdin.write("end\n")  # only now may it end (a race otherwise: exit kills at once)
        self.process.stdin.close()
        if sigkill:
            self.process.kill()
        self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        with contextlib.suppress(OSError):
            self.process.stdin.close()


@pytest.mark.parametrize(
    "kind,ending",
    [
        pytest.param("postgres", "sigkill", marks=needs_postgres),
        pytest.param("redis", "sigkill", marks=needs_redis),
        pytest.param("redis", "exit", marks=needs_redis),
        pytest.param("postgres", "return", marks=needs_postgres),
    ],
)
def test_owner_death_leaves_no_orphans(kind, ending):
    owner = Owner(kind, ending)
    try:
        info = owner.info
        assert pid_alive(info["pid"])
        owner.end(sigkill=ending == "sigkill")
    finally:
        owner.close()

    assert wait_until(lambda: not pid_alive(info["pid"]), timeout=10), "engine outlived its owner"
    assert wait_until(lambda: port_free(info["port"]), timeout=10)
    # However the owner ended, its directories (the engines' data) go away on their own: by
    # atexit, or by the janitor once the owner is gone -- no new Engines() needed.
    root = Path(info["root"])
    assert wait_until(lambda: not root.exists(), timeout=15), f"{root} outlived its owner"
    assert wait_until(lambda: not pid_alive(info["janitor"]), timeout=10), "the janitor stayed"
