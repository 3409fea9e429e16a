"""What replicas share through Redis, piece by piece, against a real ``redis-server``.

Several ``RedisBoard``s / ``RedisLimits`` in one process stand for several replicas: each has its
own ``SharedRedis`` client and its own local books, exactly as separate processes would.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from redu_mcp.api import (
    CreatedDatabase,
    Database,
    NotFoundError,
    RateLimitedError,
    Redis,
    ReduError,
    ServerError,
    TransportError,
)
from redu_mcp.provisioning.shared_board import RedisBoard, snapshot_from_json, snapshot_json
from redu_mcp.provisioning.waiting import Poll, Snapshot, StatusBoard, wait_until_ready
from redu_mcp.server.http._shared_limits import RedisLimits, SharedKeyVerdicts, SharedReservation
from redu_mcp.server.settings import HttpLimits
from redu_mcp.sharing import Sealer, SharedRedis, SharedStateUnavailable, check_url, describe_url
from tests.helpers import until
from tests.replicas import RedisServer

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


_made: list[SharedRedis] = []
#: The deployment's state key: every replica of a test seals and names with it.
STATE_KEY = "0f9e8d7c6b5a49382716f5e4d3c2b1a0" * 2


def replica(url: str, namespace: str = "test", key: str = STATE_KEY) -> SharedRedis:
    """A replica's link to Redis (closed after the test), patient: on a busy machine a slow answer must
    not turn into the documented fallback (this replica on its own), which the tests of sharing do not
    expect. The fallback is tested with a Redis that is gone, which fails at once whatever the timeouts."""
    made = SharedRedis(url, namespace=namespace, sealer=Sealer([key]))
    made.CONNECT_TIMEOUT, made.COMMAND_TIMEOUT, made.CALL_TIMEOUT = 5.0, 5.0, 10.0
    _made.append(made)
    return made


@pytest.fixture(autouse=True)
async def _close_links() -> Any:
    yield
    while _made:
        await _made.pop().aclose()


async def no_progress(poll: Poll) -> None:
    pass


class Upstream:
    """The API as the pollers see it: counts polls, and when each began and ended (monotonic clock);
    ready after ``ready_after`` of them."""

    def __init__(self, ready_after: int = 4, delay: float = 0.005) -> None:
        self.polls = 0
        self.ready_after = ready_after
        self.delay = delay
        self.times: list[tuple[float, float]] = []  # (began, ended) of each poll, in the order they began

    async def __call__(self) -> Database:
        began = time.monotonic()
        self.polls += 1
        number = self.polls
        self.times.append((began, began))
        await anyio.sleep(self.delay)
        self.times[number - 1] = (began, time.monotonic())
        status = "ready" if number > self.ready_after else "provisioning"
        return Database(id=7, name="shared", status=status, floating_ip="10.0.0.7" if status == "ready" else None)

    def gaps(self) -> list[float]:
        """Seconds from the end of each poll to the start of the next (negative: they overlapped), up to
        the first poll that answered ready (after it, a replica that read "ready" from Redis confirms
        it with a GET of its own: those GETs follow it at once, by design)."""
        polls = self.times[: self.ready_after + 1]
        return [nxt[0] - prev[1] for prev, nxt in itertools.pairwise(polls)]


# --- snapshots as JSON facts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instance",
    [
        Database(id=1, name="a", status="ready", floating_ip="10.0.0.1", port=5432, db_name="app", db_user="u"),
        Redis(id=2, name="b", status="provisioning", version="7"),
    ],
)
def test_an_instance_snapshot_round_trips_as_its_declared_model(instance):
    publication, back, error = snapshot_from_json(snapshot_json(Snapshot(at=0, instance=instance), "p1"))
    assert (publication, error) == ("p1", None)
    assert type(back) is type(instance) and back == instance


def test_a_password_never_reaches_a_snapshot():
    created = CreatedDatabase(id=3, name="c", status="provisioning", db_password="s3cret-pass-word")
    text = snapshot_json(Snapshot(at=0, instance=created), "p1")
    assert "s3cret" not in text and "password" not in text
    _, back, _ = snapshot_from_json(text)
    assert type(back) is Database and back.name == "c"


@pytest.mark.parametrize(
    "error",
    [
        RateLimitedError("slow down", endpoint="GET databases/1", status=429, code="rate_limited", retry_after=7.0),
        ServerError("bad gateway", endpoint="GET databases/1", status=502),
        NotFoundError("not found", endpoint="GET databases/1", status=404, code="not_found"),
        TransportError("timed out (ReadTimeout)", endpoint="GET databases/1", maybe_applied=True),
        ReduError("something else"),
    ],
)
def test_an_error_snapshot_rebuilds_an_equivalent_error(error):
    _, instance, back = snapshot_from_json(snapshot_json(Snapshot(at=0, error=error), "p1"))
    assert instance is None and type(back) is type(error)
    fields = ("message", "endpoint", "status", "code", "retry_after")
    assert [getattr(back, f) for f in fields] == [getattr(error, f) for f in fields]
    assert getattr(back, "maybe_applied", None) == getattr(error, "maybe_applied", None)


def error_tree(root: type[ReduError] = ReduError) -> list[type[ReduError]]:
    return [
        root,
        *(cls for sub in root.__subclasses__() if sub.__module__.startswith("redu_mcp.api") for cls in error_tree(sub)),
    ]


@pytest.mark.parametrize("cls", error_tree(), ids=lambda cls: cls.__name__)
def test_every_error_of_the_tree_comes_back_as_itself(cls):
    """A class added to the API library's error tree is shared between replicas as what it is."""
    _, _, back = snapshot_from_json(snapshot_json(Snapshot(at=0, error=cls("failed", endpoint="GET databases/1")), "p"))
    assert type(back) is cls


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "{",
        "[]",
        '{"v": 2, "n": "x"}',
        '{"v": 2, "n": "x", "error": {}}',
        '{"v": 2, "n": "x", "error": {"type": "Evil", "message": "m"}}',
        '{"v": 2, "n": "x", "error": {"type": "ReduError", "message": "m"}, "at": 1}',
        '{"v": 1, "at": 1, "error": {"type": "ReduError", "message": "m"}}',
    ],
)
def test_anything_else_in_redis_is_no_snapshot(garbage):
    with pytest.raises(ValueError):
        snapshot_from_json(garbage)


# --- the Redis link -----------------------------------------------------------------------------------


def test_the_url_is_described_without_its_password_and_refused_without_echo():
    assert describe_url("redis://:hunter2-secret@cache.internal:6380/2") == "cache.internal:6380/2"
    assert describe_url("rediss://user:pw@host") == "host:6379/0"
    with pytest.raises(ValueError, match="not a Redis URL") as refused:
        check_url("http://:hunter2-secret@cache.internal")
    assert "hunter2" not in str(refused.value)


async def test_an_unreachable_redis_fails_fast_and_is_left_alone_for_a_while(caplog):
    shared = replica("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="redu_mcp.sharing"):
        for _ in range(5):
            with pytest.raises(SharedStateUnavailable):
                await shared.run(lambda r: r.ping())
    assert not shared.available  # the next calls do not even try
    warnings = [r for r in caplog.records if "is unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one warning, not one per call


# --- the shared board ------------------------------------------------------------------------------------


async def thirty_waits(boards: list[Any], upstream: Upstream, interval: float) -> list[Any]:
    """Ten waits on each board, all on one instance, until it is ready."""
    outcomes = []

    async def wait(board: Any) -> None:
        outcome = await wait_until_ready(board, ("id", "database", 7), upstream, interval=interval, on_poll=no_progress)
        outcomes.append(outcome)

    with anyio.fail_after(30):  # a hang guard
        async with anyio.create_task_group() as tg:
            for board in boards:
                for _ in range(10):
                    tg.start_soon(wait, board)
    return outcomes


@needs_redis
async def test_three_replicas_share_one_poll_per_interval(redis):
    """30 waits on three replicas: each poll starts a full interval after the one before ended (one poll
    per interval for everyone), and polls keep coming (the wait ends ready). The measure is the gaps
    between polls, which a busy machine only stretches; how many polls there were depends on the
    scheduler, and is not asserted. The control, three replicas without Redis, shows the measure fails
    when each replica polls on its own."""
    interval = 0.1
    shared = Upstream(ready_after=4)
    outcomes = await thirty_waits([RedisBoard(replica(redis.url)) for _ in range(3)], shared, interval)
    assert len(outcomes) == 30 and all(o.ready for o in outcomes)
    # 4 × provisioning, 1 × ready; then each of the two replicas that read "ready" from Redis confirms
    # it once with its own GET (for its 10 waits), if it read it there rather than polled it itself.
    assert 5 <= shared.polls <= 5 + 2, shared.polls
    assert min(shared.gaps()) >= interval / 2, shared.gaps()  # never two polls in one interval
    # Polls came every interval, not only when a lease held by nobody expired (LEASE_SECONDS, 3 s).
    assert max(shared.gaps()) < 10 * interval, shared.gaps()

    alone = Upstream(ready_after=4)  # the control: the same waits, each replica on its own board
    outcomes = await thirty_waits([StatusBoard() for _ in range(3)], alone, interval)
    assert len(outcomes) == 30 and all(o.ready for o in outcomes)
    assert min(alone.gaps()) < interval / 2, alone.gaps()


@needs_redis
async def test_callers_never_share_a_snapshot(redis):
    alice_board, bob_board = RedisBoard(replica(redis.url)), RedisBoard(replica(redis.url))
    alice, bob = Upstream(ready_after=0), Upstream(ready_after=0)
    await wait_until_ready(alice_board, ("alice", "database", 7), alice, interval=5, on_poll=no_progress)
    await wait_until_ready(bob_board, ("bob", "database", 7), bob, interval=5, on_poll=no_progress)
    assert (alice.polls, bob.polls) == (1, 1)  # bob's wait did not read alice's fresh snapshot
    # … and another deployment (another API, another key) never reads this one's.
    other = RedisBoard(replica(redis.url, namespace="another-deployment"))
    third = Upstream(ready_after=0)
    await wait_until_ready(other, ("alice", "database", 7), third, interval=5, on_poll=no_progress)
    assert third.polls == 1


@needs_redis
async def test_a_slow_poll_is_not_duplicated(redis):
    """A poll that outlasts the lease twice over: its holder extends the lease, so the other replica
    waits for its snapshot instead of polling too."""
    slow = Upstream(ready_after=0, delay=2.5)  # longer than two leases without extension would last
    boards = [RedisBoard(replica(redis.url), lease_seconds=1.0) for _ in range(2)]
    outcomes = []

    async def wait(board: RedisBoard) -> None:
        outcomes.append(await wait_until_ready(board, "k", slow, interval=5, on_poll=no_progress))

    with anyio.fail_after(20):  # a hang guard
        async with anyio.create_task_group() as tg:
            for board in boards:
                tg.start_soon(wait, board)
    assert [o.ready for o in outcomes] == [True, True]
    # The holder kept its lease while it polled: the other replica's one GET (confirming the "ready" it
    # read from Redis) began only after the holder's poll had ended. Without the extension, it would
    # have taken the expired lease and polled alongside.
    assert slow.polls == 1 + 1
    (_, held_until), (second_began, _) = slow.times
    assert second_began >= held_until, slow.times


@needs_redis
async def test_a_holder_cancelled_mid_poll_releases_its_lease_and_another_takes_over(redis):
    """The holder's replica stops its wait mid-poll: it deletes its lease on the way out, so another
    replica polls at once. The lease lives 60 s here: only the release explains the takeover, and the
    lease key is checked gone from Redis (and present while the holder polled: the control)."""
    links = [replica(redis.url), replica(redis.url)]
    holder, taker = (RedisBoard(link, lease_seconds=60) for link in links)
    lease_key = links[0].key("lease", "k2")
    hanging, fresh = Upstream(ready_after=0, delay=3600), Upstream(ready_after=0)
    scope = anyio.CancelScope()

    async def holder_wait() -> None:
        with scope:
            await wait_until_ready(holder, "k2", hanging, interval=5, on_poll=no_progress)

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder_wait)
        await until(lambda: hanging.polls == 1, "the holder to start its poll")
        assert await links[1].run(lambda r: r.exists(lease_key)) == 1  # held while it polls
        assert 0 < await links[1].run(lambda r: r.pttl(lease_key)) <= 60_000
        scope.cancel()  # its replica stops
    assert await links[1].run(lambda r: r.exists(lease_key)) == 0  # released, not left to expire
    with anyio.fail_after(20):  # a hang guard: an unreleased lease would hold the taker for 60 s
        outcome = await wait_until_ready(taker, "k2", fresh, interval=5, on_poll=no_progress)
    assert outcome.ready and fresh.polls == 1
    assert hanging.polls == 1  # the cancelled poll was never repeated


@needs_redis
async def test_a_dead_holder_is_replaced_when_its_lease_expires(redis):
    """A holder that can release nothing (its replica was killed): the lease expires and another
    replica polls. Simulated by a lease taken straight in Redis, as a dead replica leaves it."""
    link = replica(redis.url)
    lease_key = link.key("lease", "k3")
    assert await link.run(lambda r: r.set(lease_key, "a-dead-replica", nx=True, px=300))
    fresh = Upstream(ready_after=0)
    with anyio.fail_after(20):  # a hang guard
        outcome = await wait_until_ready(RedisBoard(replica(redis.url)), "k3", fresh, interval=5, on_poll=no_progress)
    assert outcome.ready and fresh.polls == 1
    assert await link.run(lambda r: r.exists(lease_key)) == 0


@needs_redis
async def test_redis_dying_mid_wait_falls_back_to_polling_here(redis, caplog):
    boards = [RedisBoard(replica(redis.url)) for _ in range(2)]
    upstream = Upstream(ready_after=12)
    outcomes = []

    async def wait(board: RedisBoard) -> None:
        outcomes.append(await wait_until_ready(board, "k", upstream, interval=0.1, on_poll=no_progress))

    async def kill_redis() -> None:
        while upstream.polls < 3:
            await anyio.sleep(0.01)
        redis.kill()

    with caplog.at_level(logging.WARNING, logger="redu_mcp.sharing"), anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_redis)
            for board in boards:
                for _ in range(5):
                    tg.start_soon(wait, board)
    assert len(outcomes) == 10 and all(o.ready for o in outcomes)  # no wait failed
    warnings = [r.getMessage() for r in caplog.records if "is unavailable" in r.getMessage()]
    assert len(warnings) == len(boards)  # one per replica


# --- the HTTP books -------------------------------------------------------------------------------------------


@needs_redis
async def test_session_caps_and_key_checks_count_across_replicas(redis):
    numbers = HttpLimits(max_sessions_per_principal=3, new_sessions_per_minute=100, key_checks_per_minute=4)
    a, b = (RedisLimits(replica(redis.url), numbers, name) for name in ("replica-a", "replica-b"))
    held = [await a.reserve_session("alice"), await b.reserve_session("alice"), await a.reserve_session("alice")]
    assert all(isinstance(r, SharedReservation) and r.token for r in held)
    assert (await b.reserve_session("alice")).reason == "sessions"  # 3 across both
    assert isinstance(await b.reserve_session("bob"), SharedReservation)  # others are not affected
    await a.session_opened(held[0], "session-1")
    await b.session_opened(held[1], None)  # an opening request that failed frees its slot everywhere
    assert isinstance(await b.reserve_session("alice"), SharedReservation)
    # Which replica serves a session is known to the others (for the same principal only).
    assert await b.session_elsewhere("alice", "session-1")
    assert not await a.session_elsewhere("alice", "session-1")
    assert not await b.session_elsewhere("mallory", "session-1")
    # Closing it on the wrong replica changes nothing; on its own, it frees the slot.
    await b.session_closed("alice", "session-1")
    assert await b.session_elsewhere("alice", "session-1")
    await a.session_closed("alice", "session-1")
    assert not await b.session_elsewhere("alice", "session-1")
    # Key checks: 4 a minute from one address, whichever replica is asked.
    verdicts = [await (a if n % 2 else b).allow_key_check("10.0.0.9") for n in range(5)]
    assert verdicts[:4] == [None] * 4 and verdicts[4].reason == "key_checks"
    assert await a.allow_key_check("10.0.0.10") is None  # another address has its own budget


@needs_redis
async def test_limits_fall_back_to_this_replica_when_redis_is_gone(redis):
    numbers = HttpLimits(max_sessions_per_principal=2, key_checks_per_minute=2)
    a = RedisLimits(replica(redis.url), numbers, "replica-a")
    redis.kill()
    first, _, third = [await a.reserve_session("alice") for _ in range(3)]
    assert not isinstance(first, SharedReservation) or first.token is None
    assert third.reason == "sessions"  # the local books still hold the line
    assert [await a.allow_key_check("x") is None for _ in range(3)] == [True, True, False]


@needs_redis
async def test_key_verdicts_are_shared_as_hashes_only(redis):
    shared = replica(redis.url)
    verdicts = SharedKeyVerdicts(shared, ok_seconds=60, refused_seconds=30)
    await verdicts.remember("digest-good", "usr_1", 60)
    await verdicts.remember("digest-bad", None, 30)
    assert (await verdicts.recall("digest-good"))[0] == "usr_1"
    user, left = await verdicts.recall("digest-bad")
    assert user is None and 0 < left <= 30
    assert await verdicts.recall("digest-unknown") is None
    keys = await shared.run(lambda r: r.keys("*"))
    assert all(k.startswith("redu-mcp:test:") for k in keys)


# --- credentials files, completed by whichever replica sees the instance ready -------------------------------


def _provisioning(name: str = "orders") -> Database:
    return Database(id=42, name=name, status="provisioning", db_name="app", db_user="appuser", port=5432)


def _ready(name: str = "orders") -> Database:
    return _provisioning(name).model_copy(update={"status": "ready", "floating_ip": "203.0.113.42"})


def test_another_replica_completes_the_file_with_the_host(tmp_path: Path):
    from redu_mcp.api import DATABASE
    from redu_mcp.provisioning.credentials import CredentialStore, read_env

    creator, finisher = CredentialStore(tmp_path / "creds"), CredentialStore(tmp_path / "creds")
    path = creator.save("local", DATABASE, _provisioning(), "pw-0123456789")
    assert not read_env(path)["PGHOST"]  # no host yet
    assert finisher.complete("local", DATABASE, _ready()) == path
    saved = read_env(path)
    assert saved["PGHOST"] == "203.0.113.42" and saved["PGPASSWORD"] == "pw-0123456789"
    assert saved["DATABASE_URL"].startswith("postgresql://appuser:pw-0123456789@203.0.113.42:5432/")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert creator.complete("local", DATABASE, _ready()) == path  # already complete: the creator leaves it be
    assert read_env(path) == saved


def test_a_replica_only_completes_what_is_plainly_ours(tmp_path: Path):
    from redu_mcp.api import DATABASE
    from redu_mcp.provisioning.credentials import CredentialStore, read_env

    directory = tmp_path / "creds"
    path = CredentialStore(directory).save("local", DATABASE, _provisioning(), "pw-0123456789")
    before = path.read_text()
    path.chmod(0o644)  # readable by others: not a file we wrote
    assert CredentialStore(directory).complete("local", DATABASE, _ready()) is None
    assert path.read_text() == before
    path.chmod(0o600)
    target = tmp_path / "elsewhere.env"
    target.write_text(before)
    target.chmod(0o600)
    path.unlink()
    path.symlink_to(target)  # a planted link is never followed
    assert CredentialStore(directory).complete("local", DATABASE, _ready()) is None
    assert not read_env(target)["PGHOST"]
    # A file of another instance that happens to bear the name (its header names its own id).
    path.unlink()
    path.write_text(before.replace('"id": 42', '"id": 7'))
    path.chmod(0o600)
    assert CredentialStore(directory).complete("local", DATABASE, _ready()) is None
