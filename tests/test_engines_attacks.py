"""The sandbox engines under attack.

The attacker holds an instance's credentials and, in the worst case, a shell as the engine's
account (the old design handed out PostgreSQL superusers, so ``COPY ... TO PROGRAM`` gave one).
From there they try to get root through root's file accesses (symlinks planted where root
writes or reads), to reach the other engines (their files, their passwords), and to outlive
their instance. Every test plays that attacker and fails if the defense it targets is removed.

Separate accounts per engine exist only when the server runs as root, so the tests that need
them skip without root (CI runs as root).
"""

from __future__ import annotations

import asyncio
import grp
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import redis.asyncio as aioredis

from redu_mcp.sandbox import engines as engines_package
from redu_mcp.sandbox.engines import (
    Engines,
    EngineStartError,
    RunningEngine,
    _accounts,
    _homes,
    _janitor,
    _output,
    _secrets,
    _server_config,
    check_postgres_login,
)
from tests.test_engines import (
    PASSWORD,
    Owner,
    assert_no_password_leak,
    assert_secret_absent,
    needs_both,
    needs_postgres,
    needs_redis,
    pid_alive,
    wait_ready,
    wait_until,
)

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: engines get their own accounts only when the server runs as root (CI runs as root)",
)
ENGINES_PACKAGE = Path(engines_package.__file__).resolve().parent


# ----------------------------------------------------------------------------- the attacker


def as_account(uid: int, gid: int, script: str, *args: object) -> subprocess.CompletedProcess:
    """Run a shell script as an engine's account: what ``COPY ... TO PROGRAM`` used to give."""
    return subprocess.run(
        ["/bin/sh", "-c", script, "attacker", *map(str, args)],
        user=uid,
        group=gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


def assert_denied(result: subprocess.CompletedProcess, what: str) -> None:
    assert result.returncode != 0, f"the attacker could {what}: {result.stdout!r}"
    assert "denied" in result.stderr.lower() or "not permitted" in result.stderr.lower(), (
        f"{what}: failed for another reason: {result.stderr!r}"
    )


def escape(uid: int, gid: int) -> int:
    """A process of the account that left the engine's session and process group (setsid)."""
    result = as_account(uid, gid, "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!")
    pid = int(result.stdout)
    status = _janitor._proc_status(pid)
    assert status is not None and uid in status[0], "the escaped process did not start"
    return pid


def kill_if_still_ours(pid: int | None, uid: int) -> None:
    """Test cleanup: SIGKILL a process this test started, if the pid still is that process."""
    if pid is not None:
        _janitor._kill_if_uid(pid, uid)


@dataclass
class Victims:
    """A root-only file an attacker wants root to write (or leak), and a path it wants created."""

    directory: Path
    file: Path
    absent: Path
    content: bytes
    mtime_ns: int

    def links(self) -> dict[str, Path]:
        """Every name root might touch in an engine directory, each pointing at a victim."""
        names = [
            "engine.log",
            "redis.conf",
            "pwfile",
            "owner.pid",
            "postmaster.log",
            "server.log",
            "stdout.log",
            "stderr.log",
            "pg_hba.conf",
            "postgresql.conf",
        ]
        links = {name: self.file if i % 2 == 0 else self.absent for i, name in enumerate(names)}
        links["victim-dir"] = self.directory  # a directory link: deleting must not go through
        return links

    def assert_untouched(self) -> None:
        info = os.lstat(self.file)
        assert self.file.read_bytes() == self.content, "root wrote through a planted symlink"
        assert info.st_mtime_ns == self.mtime_ns, "root touched the file a planted symlink names"
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)
        assert not os.path.lexists(self.absent), "root created a file a planted symlink names"
        assert sorted(os.listdir(self.directory)) == ["victim"]


@pytest.fixture
def victims(tmp_path: Path) -> Victims:
    directory = tmp_path / "root-only"
    directory.mkdir(mode=0o700)
    victim = directory / "victim"
    content = b"root's precious data\n"
    victim.write_bytes(content)
    victim.chmod(0o600)
    os.utime(victim, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    return Victims(directory, victim, directory / "absent", content, os.lstat(victim).st_mtime_ns)


def plant(uid: int, gid: int, directory: Path, links: dict[str, Path]) -> None:
    """As the account, (re)place each name in ``directory`` by a symlink to its target."""
    args: list[object] = [directory]
    for name, target in links.items():
        args += [name, target]
    result = as_account(
        uid,
        gid,
        'dir=$1; shift; while [ $# -gt 0 ]; do ln -sfn "$2" "$dir/$1" || exit 1; shift 2; done',
        *args,
    )
    assert result.returncode == 0, result.stderr
    for name in links:
        assert (directory / name).is_symlink()


async def start(manager: Engines, kind: str) -> RunningEngine:
    if kind == "postgres":
        return await manager.start_postgres(db_name="app", db_user="app", password=PASSWORD)
    return await manager.start_redis(password=PASSWORD)


KINDS = [pytest.param("postgres", marks=needs_postgres), pytest.param("redis", marks=needs_redis)]


# ----------------------------------------------------------------------------- root's file accesses


@needs_root
@pytest.mark.parametrize("kind", KINDS)
async def test_root_never_follows_a_symlink_the_engine_account_planted(kind, victims, monkeypatch):
    """The review's escalation: engine.log (or any file root touches) as a symlink to a cron file.

    The attacker plants links the moment the engine directory exists (before anything else root
    does there; the old design opened engine.log with O_CREAT|O_APPEND next), again while the
    engine runs, then kills the engine so that root reads its last words, and root stops and
    cleans up. Root must neither write, create nor read through any of the links.
    """
    original_create = _homes._Home.create

    def create_then_attack(home):
        original_create(home)
        plant(home.account.uid, home.account.gid, home.path, victims.links())

    monkeypatch.setattr(_homes._Home, "create", create_then_attack)
    manager = Engines()
    try:
        engine = await start(manager, kind)
        await wait_ready(engine)
        plant(engine.uid, engine.gid, engine.data_dir, victims.links())
        if kind == "postgres":
            plant(engine.uid, engine.gid, engine.data_dir / "pgdata", victims.links())

        result = as_account(engine.uid, engine.gid, 'kill -9 "$1"', engine.pid)
        assert result.returncode == 0, result.stderr
        assert await asyncio.to_thread(wait_until, lambda: engine.failure() is not None)
        reason = engine.failure()
        assert "precious" not in reason, "root read a root-only file through a planted symlink"

        await engine.stop()
        assert not engine.data_dir.exists()
    finally:
        await manager.aclose()
    victims.assert_untouched()


@needs_root
@needs_redis
async def test_engine_account_cannot_write_the_root_directory(engines):
    """The root directory is root's: no engine can plant anything where root creates files."""
    rd = await engines.start_redis(password=PASSWORD)
    await wait_ready(rd)
    root = engines.root
    info = os.lstat(root)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o711)
    assert_denied(as_account(rd.uid, rd.gid, 'ls "$1"', root), "list the root directory")
    for name in ("redis-2", "postgres-2", "owner.pid", "engine.log"):
        result = as_account(rd.uid, rd.gid, 'ln -sfn /etc/crontab "$1/$2"', root, name)
        assert_denied(result, f"create {name} in the root directory")
    assert_denied(
        as_account(rd.uid, rd.gid, 'echo "* * * * * root id" >> "$1/owner.pid"', root),
        "append to owner.pid",
    )


# ----------------------------------------------------------------------------- engines vs engines


@needs_root
@needs_both
async def test_engines_cannot_reach_each_other(engines):
    """One uid and gid per engine: an engine's account cannot read another engine's files."""
    pg = await engines.start_postgres(db_name="app", db_user="app", password=PASSWORD)
    rd = await engines.start_redis(password="other tenant's password")
    await asyncio.gather(wait_ready(pg), wait_ready(rd))

    assert pg.uid != rd.uid and pg.gid != rd.gid
    assert pwd.getpwnam("nobody").pw_uid not in (pg.uid, rd.uid)
    for engine in (pg, rd):
        account = pwd.getpwuid(engine.uid)
        assert account.pw_name.startswith(_janitor.POOL_PREFIX)
        assert account.pw_shell.endswith(("nologin", "false"))

    for attacker, target in ((pg, rd), (rd, pg)):
        assert_denied(
            as_account(attacker.uid, attacker.gid, 'ls -a "$1"', target.data_dir),
            f"list the {target.kind} directory as the {attacker.kind} account",
        )
        assert_denied(
            as_account(attacker.uid, attacker.gid, 'cat "/proc/$1/environ"', target.pid),
            f"read the {target.kind} process's environment",
        )
    assert_denied(
        as_account(rd.uid, rd.gid, 'cat "$1/pgdata/postgresql.conf"', pg.data_dir),
        "read PostgreSQL's configuration as the Redis account",
    )
    # And there is no secret on disk to steal in the first place.
    assert_no_password_leak(pg, PASSWORD)
    assert_no_password_leak(rd, "other tenant's password")


def supplementary_groups(pid: int) -> list[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return [int(g) for g in status.split("Groups:")[1].split("\n")[0].split()]


@needs_root
@needs_redis
def test_engines_do_not_inherit_the_servers_supplementary_groups():
    """A server running with, say, the shadow group must not pass it on to the engines."""
    try:
        shadow = grp.getgrnam("shadow").gr_gid
    except KeyError:
        pytest.skip("no 'shadow' group on this system")
    owner = Owner("redis", "sigkill", extra_groups=[shadow])
    try:
        assert supplementary_groups(owner.process.pid) == [shadow]  # the setup is meaningful
        assert supplementary_groups(owner.info["pid"]) == []
        owner.end(sigkill=True)
    finally:
        owner.close()
    assert wait_until(lambda: not Path(owner.info["root"]).exists(), timeout=15)


# ----------------------------------------------------------------------------- PostgreSQL client role


@needs_postgres
@pytest.mark.parametrize("db_name,db_user", [("app db", "app_user"), ("postgres", "postgres")])
async def test_postgres_client_is_no_superuser_but_owns_its_database(engines, db_name, db_user):
    pg = await engines.start_postgres(db_name=db_name, db_user=db_user, password=PASSWORD)
    await wait_ready(pg)
    async with await psycopg.AsyncConnection.connect(
        host=pg.host,
        port=pg.port,
        dbname=db_name,
        user=db_user,
        password=PASSWORD,
        autocommit=True,
    ) as conn:
        cur = await conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user"
        )
        assert await cur.fetchone() == (False, False, False, False, False)
        cur = await conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
        assert await cur.fetchone() == (db_user,)
        await conn.execute("CREATE TABLE mine (x int)")
        await conn.execute("INSERT INTO mine VALUES (1)")
        await conn.execute("CREATE SCHEMA own_schema")

        for attack in (
            "COPY (SELECT 1) TO PROGRAM 'id'",
            "COPY (SELECT 1) TO '/tmp/owned-by-postgres'",
            "SELECT pg_read_file('/etc/passwd')",
            "ALTER SYSTEM SET archive_command = 'id'",
            "CREATE ROLE another LOGIN",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(attack)

        cur = await conn.execute("SELECT rolname FROM pg_roles WHERE rolsuper")
        superusers = [row[0] for row in await cur.fetchall()]
        assert superusers and db_user not in superusers
        for superuser in superusers:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(f'SET ROLE "{superuser}"')
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(f"ALTER ROLE \"{superuser}\" PASSWORD 'mine now'")
    # The superuser cannot log in at all: it has no password, and there is no unix socket.
    for superuser in superusers:
        for guess in ("x", PASSWORD, superuser):
            assert not await check_postgres_login(
                host=pg.host, port=pg.port, user=superuser, dbname="postgres", password=guess
            )
    assert list(Path(pg.data_dir).glob(".s.PGSQL.*")) == []


# Passwords that SASLprep changes (or leaves alone because it prohibits them), with spellings
# that must then be accepted as the same password: this proves our verifier prepared each one
# exactly as libpq does.
SASLPREP_CASES = {
    PASSWORD: [],
    "I\u00adX": ["IX"],  # soft hyphen: mapped to nothing
    "a\u00a0b": ["a b"],  # no-break space: mapped to space
    "\ufb01x": ["fix"],  # ligature: NFKC
    "\u2168": ["IX"],  # roman numeral nine: NFKC
    "x\u0007y\u20ac": [],  # a control character: prohibited, so used as it is
    "\u0627\u0644\u0627": [],  # right-to-left only: fine
    "a\u0627": [],  # mixed directions: prohibited, used as it is
    "\u00ad\u200b": [],  # nothing left after mapping: used as it is
}


@needs_postgres
async def test_scram_verifier_computed_here_matches_what_libpq_sends(engines):
    pg = await engines.start_postgres(db_name="app", db_user="app", password=PASSWORD)
    await wait_ready(pg)
    params = {"host": pg.host, "port": pg.port, "dbname": "app", "user": "app"}
    async with await psycopg.AsyncConnection.connect(**params, password=PASSWORD, autocommit=True) as conn:
        for password, same in SASLPREP_CASES.items():
            await conn.execute(f"ALTER ROLE CURRENT_USER PASSWORD '{_secrets._scram_verifier(password)}'")
            for spelling in [password, *same]:
                try:
                    check = await psycopg.AsyncConnection.connect(**params, password=spelling)
                except psycopg.OperationalError:
                    pytest.fail(f"login failed for SASLprep case {password.encode()!r} spelled {spelling.encode()!r}")
                await check.close()


@needs_postgres
async def test_failed_postgres_setup_reports_without_secrets(engines):
    """A failing CREATE ROLE (reserved name) is reported; neither password nor verifier shows."""
    with pytest.raises(EngineStartError, match="reserved") as info:
        await engines.start_postgres(db_name="app", db_user="pg_evil", password=PASSWORD)
    message = str(info.value)
    assert_secret_absent(PASSWORD, message, "the exception")
    assert "SCRAM-SHA-256$" not in message
    assert list(engines.root.glob("postgres-*")) == []


# ----------------------------------------------------------------------------- Redis


@needs_redis
async def test_redis_refuses_protected_configs_debug_and_modules(engines):
    rd = await engines.start_redis(password=PASSWORD)
    await wait_ready(rd)
    client = aioredis.Redis(host=rd.host, port=rd.port, password=PASSWORD)
    try:
        for attack in (
            ("CONFIG", "SET", "dir", "/tmp"),
            ("CONFIG", "SET", "dbfilename", "evil.so"),
            ("CONFIG", "REWRITE"),
            ("DEBUG", "SLEEP", "0"),
            ("DEBUG", "JMAP"),
            ("MODULE", "LOAD", "/tmp/evil.so"),
            ("MODULE", "LOADEX", "/tmp/evil.so"),
            ("MODULE", "UNLOAD", "anything"),
            ("SHUTDOWN",),  # the engine would stop while its instance still says "ready"
            ("SHUTDOWN", "NOSAVE"),
            ("REPLICAOF", "127.0.0.1", "1"),  # its data would follow another server
            ("SLAVEOF", "127.0.0.1", "1"),
            ("FAILOVER",),
            ("SYNC",),
        ):
            with pytest.raises(redis.exceptions.ResponseError):
                await client.execute_command(*attack)
        assert await client.ping()  # still up, still its own master
        assert (await client.info("replication"))["role"] == "master"
        config = await client.config_get("*")
        assert config["dir"] == str(rd.data_dir)
        assert config["enable-protected-configs"] == "no"
        assert config["enable-debug-command"] == "no"
        assert config["enable-module-command"] == "no"
        await client.set("still", "works")
    finally:
        await client.aclose()
    # The config (with requirepass) came on stdin: no file holds it.
    assert os.listdir(rd.data_dir) == []
    assert_no_password_leak(rd, PASSWORD)


def test_redis_before_7_has_the_dangerous_commands_renamed_away():
    old = _server_config._redis_config(port=1, directory=Path("/x"), password="p", version="6.2.14")
    assert "enable-protected-configs" not in old
    for command in ("CONFIG", "DEBUG", "MODULE"):
        assert f'rename-command {command} ""' in old.splitlines()
    new = _server_config._redis_config(port=1, directory=Path("/x"), password="p", version="7.0.15")
    for line in ("enable-protected-configs no", "enable-debug-command no", "enable-module-command no"):
        assert line in new.splitlines()
    for config in (old, new):
        for command in ("SHUTDOWN", "REPLICAOF", "SLAVEOF"):
            assert f'rename-command {command} ""' in config.splitlines()


# ----------------------------------------------------------------------------- accounts and processes


@needs_root
@needs_redis
async def test_stop_kills_every_process_of_the_engine_account(engines):
    rd = await engines.start_redis(password=PASSWORD)
    await wait_ready(rd)
    escaped = escape(rd.uid, rd.gid)
    try:
        await rd.stop()
        assert not pid_alive(escaped), "a setsid-escaped process outlived its engine"
        assert _janitor._pids_of_uid(rd.uid) == []
    finally:
        kill_if_still_ours(escaped, rd.uid)


@needs_root
def test_an_account_is_handed_out_only_when_none_of_its_processes_runs():
    first = _accounts._acquire_account()
    first.release()
    escaped = escape(first.uid, first.gid)  # e.g. left by an engine whose janitor was killed
    held = []
    try:
        while True:  # take slots until we get that account again (normally the first try)
            account = _accounts._acquire_account()
            held.append(account)
            if account.uid == first.uid:
                break
        assert not pid_alive(escaped), "an account was handed out while its process ran"
    finally:
        for account in held:
            account.release()
        kill_if_still_ours(escaped, first.uid)


def test_reaping_refuses_anything_but_a_pool_account():
    """Killing "every process of the uid" must never reach root, us, or a shared account."""
    for uid in {0, os.getuid(), os.geteuid(), pwd.getpwnam("nobody").pw_uid}:
        with pytest.raises(ValueError, match="not a sandbox engine account"):
            _janitor._reap_uid(uid, 0)


# ----------------------------------------------------------------------------- the owner dies


@needs_root
@pytest.mark.parametrize("kind", KINDS)
def test_janitor_cleans_up_after_a_sigkilled_owner(kind, victims):
    """No new Engines() needed: the janitor kills the account's processes, removes the secrets."""
    owner = Owner(kind, "sigkill")
    info = owner.info
    escaped = None
    try:
        escaped = escape(info["uid"], info["gid"])
        plant(info["uid"], info["gid"], Path(info["data_dir"]), victims.links())
        owner.end(sigkill=True)
        assert wait_until(lambda: not pid_alive(info["pid"]), timeout=10), "engine outlived owner"
        assert wait_until(lambda: not pid_alive(escaped), timeout=10), "escaped process survived"
        assert wait_until(lambda: not Path(info["root"]).exists(), timeout=15), "secrets stayed"
        assert _janitor._pids_of_uid(info["uid"]) == []
        assert wait_until(lambda: not pid_alive(info["janitor"]), timeout=10)
    finally:
        owner.close()
        kill_if_still_ours(escaped, info["uid"])
    victims.assert_untouched()


@needs_root
@needs_redis
def test_next_start_cleans_up_when_owner_and_janitor_were_both_killed(victims):
    owner = Owner("redis", "sigkill")
    info = owner.info
    root = Path(info["root"])
    escaped = None
    try:
        escaped = escape(info["uid"], info["gid"])
        plant(info["uid"], info["gid"], Path(info["data_dir"]), victims.links())
        os.kill(info["janitor"], signal.SIGKILL)
        assert wait_until(lambda: not pid_alive(info["janitor"]), timeout=10)
        owner.end(sigkill=True)
        assert wait_until(lambda: not pid_alive(info["pid"]), timeout=10), "no parent-death signal"
        assert root.exists() and pid_alive(escaped)  # nobody could clean up...
        Engines().close_sync()  # ...until the next Engines() notices the owner is gone
        assert not root.exists()
        assert wait_until(lambda: not pid_alive(escaped), timeout=10)
    finally:
        owner.close()
        kill_if_still_ours(escaped, info["uid"])
    victims.assert_untouched()


# ----------------------------------------------------------------------------- without root

UNPRIVILEGED_CHILD = textwrap.dedent(
    """
    import asyncio, importlib.util, json, os, sys

    package = sys.argv[1]
    spec = importlib.util.spec_from_file_location(
        "standalone_engines", os.path.join(package, "__init__.py"), submodule_search_locations=[package]
    )
    engines = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = engines
    spec.loader.exec_module(engines)

    async def main():
        manager = engines.Engines()
        pg = await manager.start_postgres(db_name="d", db_user="u", password="pw \u00e4")
        rd = await manager.start_redis(password="pw \u00e4")
        ready = {}
        for engine in (pg, rd):
            for _ in range(600):
                if await engine.is_ready():
                    break
                await asyncio.sleep(0.05)
            ready[engine.kind] = await engine.is_ready()
        print(json.dumps({
            "ready": ready, "root": str(manager.root), "pids": [pg.pid, rd.pid],
            "uids": [pg.uid, rd.uid],
            "process_uids": [sorted(engines._janitor._proc_status(p)[0]) for p in (pg.pid, rd.pid)],
        }), flush=True)
        if sys.argv[2] == "exit":
            os._exit(0)  # no cleanup of ours: the janitor's job
        await manager.aclose()

    asyncio.run(main())
    """
)


@pytest.fixture
def readable_engines_package() -> Iterator[Path]:
    """A copy of the engines package another user can read: the clone may be private (a 0700 home,
    as many are), and pytest's own tmp_path is 0700 too."""
    base = Path(tempfile.mkdtemp(prefix="redu-mcp-engines-", dir="/tmp"))
    try:
        base.chmod(0o755)
        copy = base / "engines"
        shutil.copytree(ENGINES_PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
        for path in (copy, *copy.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield copy
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_root  # to become an unprivileged user for the test
@needs_both
@pytest.mark.parametrize("ending", ["close", "exit"])
def test_without_root_engines_run_as_the_invoking_user(ending, readable_engines_package):
    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.skip("needs /usr/bin/python3 that an unprivileged user can run")
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True, text=True
    )
    if version.stdout.strip() != "True":
        pytest.skip("/usr/bin/python3 is older than 3.11")
    user = pwd.getpwnam("nobody")  # any unprivileged account: here it is the *invoking* user
    result = subprocess.run(
        [python, "-I", "-c", UNPRIVILEGED_CHILD, readable_engines_package, ending],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    assert info["ready"] == {"postgres": True, "redis": True}
    assert info["uids"] == [user.pw_uid, user.pw_uid]
    assert info["process_uids"] == [[user.pw_uid], [user.pw_uid]]
    for pid in info["pids"]:
        assert wait_until(lambda pid=pid: not pid_alive(pid), timeout=10)
    assert wait_until(lambda: not Path(info["root"]).exists(), timeout=15)


# ----------------------------------------------------------------------------- output handling


def assert_no_fragment(secret: str, text: str, size: int = 4) -> None:
    """Not even a piece of the secret (any ``size`` consecutive characters) is in ``text``."""
    pieces = {secret[i : i + size] for i in range(len(secret) - size + 1)}
    leaked = any(piece in text for piece in pieces)
    assert not leaked, "a piece of the password leaked into the output tail"


def test_output_tail_redacts_passwords_however_the_pipe_splits_them():
    read_fd, write_fd = os.pipe()
    tail = _output._LogTail(read_fd, _secrets._secret_forms(PASSWORD, "SCRAM-SHA-256$4096:c2FsdA=="), "t")
    quoted = _secrets._redis_quote(PASSWORD)[1:-1]
    data = (
        f"FATAL: password {PASSWORD} rejected\n".encode()
        + f">>> 'requirepass \"{quoted}\"'\n".encode()
        + b"verifier SCRAM-SHA-256$4096:c2FsdA== here\n"
        + b"x" * 70_000
        + PASSWORD.encode()
        + b"\n"  # long: kept redacted, or dropped whole
        + b"last line\n"
    )
    for i in range(0, len(data), 7):  # the reader gets whatever pieces are there
        os.write(write_fd, data[i : i + 7])
    os.close(write_fd)
    assert tail.wait_eof(10)
    kept = "\n".join(tail._lines)
    for secret in (PASSWORD, quoted, "c2FsdA=="):
        assert_secret_absent(secret, kept, "the output tail")
    assert_no_fragment(PASSWORD, kept)
    assert_no_fragment(quoted, kept, size=8)
    assert tail.text().endswith("last line")


def test_output_tail_drops_an_overlong_line_whole_even_when_cut_inside_the_password():
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    tail = _output._LogTail(read_fd, _secrets._secret_forms(PASSWORD), "t")
    assert tail.wait_eof(10)
    secret = PASSWORD.encode()
    # The line outgrows the limit three bytes into the password, and ends in the next read.
    tail._feed(b"x" * _output._LOG_PENDING_BYTES + secret[:3])
    tail._feed(secret[3:] + b"y" * 10 + b"\nafter\n")
    kept = "\n".join(tail._lines)
    assert_no_fragment(PASSWORD, kept)
    assert "y" not in kept and "x" not in kept
    assert kept == "(overlong output line dropped)\nafter"


def test_a_held_open_output_pipe_delays_failure_reports_only_once(monkeypatch):
    """An escaped process can keep the engine's output pipe open: failure() must not wait for
    its end on every call (the sandbox calls it on each refresh, on the event loop). The first
    settle waits (briefly here); then the wait is made an hour long, and the next settles must
    still return: only "once only" explains that they do."""
    read_fd, write_fd = os.pipe()  # the write end stays open: no EOF, like a held pipe
    try:
        tail = _output._LogTail(read_fd, _secrets._secret_forms(PASSWORD), "t")
        os.write(write_fd, b"FATAL: last words\n")
        monkeypatch.setattr(_output, "_SETTLE_SECONDS", 0.05)
        tail.settle()  # the first report: waits for EOF, which does not come
        assert not tail.wait_eof(0)  # the pipe is still held open
        monkeypatch.setattr(_output, "_SETTLE_SECONDS", 3600)
        later = threading.Thread(target=lambda: [tail.settle() for _ in range(3)], daemon=True)
        later.start()
        later.join(20)  # a hang guard: waiting again would take an hour
        assert not later.is_alive(), "settle() waited again for a pipe that stays open"
        assert wait_until(lambda: "last words" in tail.text(), timeout=10)  # and the tail still reads
    finally:
        os.close(write_fd)
