"""The Redis data layer against a real redis-server: replies, databases, pools, timeouts, describe,
check_connection and its diagnosed failures, and the password kept out of everything."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis

from redu_mcp.data import (
    RedisCaps,
    RedisCommandError,
    RedisData,
    RedisDescription,
    RedisNoAnswer,
    RedisRefused,
    RedisResult,
    RedisTls,
    RedisUnavailable,
)
from tests.redis_data_support import (
    PASSWORD,
    RunningRedis,
    assert_secret_absent,
    needs_redis_server,
    our_connections,
    started_redis,
)

pytestmark = pytest.mark.skipif(needs_redis_server is not None, reason=f"engines missing: {needs_redis_server}")


@pytest.fixture(scope="module")
def server() -> Iterator[RunningRedis]:
    with started_redis() as running:
        yield running


@pytest.fixture
def raw(server: RunningRedis) -> Iterator[redis.Redis]:
    client = server.raw()
    client.flushall()
    client.client_kill_filter(_type="normal", skipme=True)  # no connection left by another test
    yield client
    client.close()


@pytest.fixture
async def data() -> AsyncIterator[RedisData]:
    layer = RedisData()
    yield layer
    await layer.aclose()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# --- replies ----------------------------------------------------------------------------------------


async def test_resp3_replies_map_to_typed_json(server: RunningRedis, raw: redis.Redis, data: RedisData):
    raw.hset("h", mapping={"name": "ada", "age": "36"})
    raw.zadd("z", {"a": 1.5, "b": float("inf")})
    raw.sadd("s", "x")
    raw.set("bin", b"\xff\x00\xfe")
    raw.set("n", "12")
    target = server.target()

    async def value(command: str, *arguments: str) -> object:
        outcome = await data.run(target, command, list(arguments), access="read")
        assert isinstance(outcome, RedisResult) and outcome.protocol == 3 and outcome.truncation is None, outcome
        return outcome.value

    assert await value("HGETALL", "h") == {"name": "ada", "age": "36"}
    assert await value("ZRANGE", "z", "0", "-1", "WITHSCORES") == [["a", 1.5], ["b", "inf"]]
    assert await value("ZSCORE", "z", "a") == 1.5
    assert await value("SMEMBERS", "s") == ["x"]
    assert await value("GET", "bin") == {"$bytes_base64": "/wD+"}
    assert await value("GET", "missing") is None
    assert await value("STRLEN", "n") == 2
    assert await value("EXISTS", "n", "h", "nope") == 2
    assert await value("OBJECT", "ENCODING", "h") == "listpack"


async def test_binary_arguments_round_trip(server: RunningRedis, raw: redis.Redis, data: RedisData):
    stored = await data.run(server.target(), "SET", [b"k\xff", b"\x00\x01\xfe"], access="write")
    assert isinstance(stored, RedisResult) and stored.writes and stored.keys == 1
    assert raw.get(b"k\xff") == b"\x00\x01\xfe"


async def test_an_error_reply_is_typed_and_the_connection_stays_usable(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    raw.set("k", "text")
    outcome = await data.run(server.target(), "LPUSH", ["k", "x"], access="write")
    assert outcome == RedisCommandError(
        "LPUSH", "WRONGTYPE", "Operation against a key holding the wrong kind of value", True
    )
    wrong_arity = await data.run(server.target(), "GET", [], access="read")
    assert isinstance(wrong_arity, RedisCommandError) and wrong_arity.code == "ERR"
    after = await data.run(server.target(), "GET", ["k"], access="read")
    assert isinstance(after, RedisResult) and after.value == "text"
    assert len(our_connections(raw)) == 1  # one pooled connection served all three


async def test_hash_scan_pages_that_overflow_the_caps_offer_a_smaller_count(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    raw.hset("wide", mapping={f"f{i}": i for i in range(2_000)})  # a hashtable: HSCAN honours COUNT
    outcome = await data.run(
        server.target(), "HSCAN", ["wide", "0", "COUNT", "500"], access="read", caps=RedisCaps(max_elements=40)
    )
    assert isinstance(outcome, RedisResult) and outcome.truncation is not None
    assert outcome.truncation.shown == 40 and outcome.truncation.next_call == ("HSCAN", "wide", "0", "COUNT", "20")
    smaller = await data.run(
        server.target(), "HSCAN", ["wide", "0", "COUNT", "20"], access="read", caps=RedisCaps(max_elements=40)
    )
    assert isinstance(smaller, RedisResult) and isinstance(smaller.value, list) and smaller.value[0] != "0"


# --- databases, pools, principals -----------------------------------------------------------------


async def test_the_database_index_is_an_argument_and_connections_never_leave_their_database(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    target = server.target()
    assert isinstance(await data.run(target, "SET", ["k", "in-3"], access="write", db=3), RedisResult)
    assert isinstance(await data.run(target, "SET", ["k", "in-0"], access="write"), RedisResult)
    assert server.raw(3).get("k") == b"in-3" and raw.get("k") == b"in-0"
    for _ in range(3):  # interleaved: each call finds its own database
        three = await data.run(target, "GET", ["k"], access="read", db=3)
        zero = await data.run(target, "GET", ["k"], access="read", db=0)
        assert isinstance(three, RedisResult) and three.value == "in-3" and three.db == 3
        assert isinstance(zero, RedisResult) and zero.value == "in-0"
    assert sorted(int(c["db"]) for c in our_connections(raw)) == [0, 3]
    out_of_range = await data.run(target, "GET", ["k"], access="read", db=99)
    assert isinstance(out_of_range, RedisCommandError) and "out of range" in out_of_range.message
    assert out_of_range.command == "SELECT"  # what failed; the command was never judged, so never echoed


async def test_principals_never_share_connections_and_delete_closes_theirs(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    alice, bob = server.target(principal="user:alice"), server.target(principal="user:bob")
    for target in (alice, bob, alice, bob):
        assert isinstance(await data.run(target, "DBSIZE", [], access="read"), RedisResult)
    assert len(our_connections(raw)) == 2
    await data.close_instance("user:alice", alice.instance_id)
    await eventually(lambda: len(our_connections(raw)) == 1)
    assert isinstance(await data.run(bob, "DBSIZE", [], access="read"), RedisResult)
    await data.close_instance(None, bob.instance_id)  # deleted: every principal's connections go
    await eventually(lambda: len(our_connections(raw)) == 0)


async def test_concurrent_calls_are_bounded_by_the_pool_size(server: RunningRedis, raw: redis.Redis):
    layer = RedisData(connections_per_pool=2)
    try:
        results = await asyncio.gather(*(layer.run(server.target(), "PTTL", ["k"], access="read") for _ in range(20)))
        assert all(isinstance(r, RedisResult) for r in results)
        assert len(our_connections(raw)) <= 2
    finally:
        await layer.aclose()


async def test_idle_connections_are_closed(server: RunningRedis, raw: redis.Redis):
    layer = RedisData(idle_seconds=0.2)
    try:
        assert isinstance(await layer.run(server.target(), "DBSIZE", [], access="read"), RedisResult)
        assert len(our_connections(raw)) == 1
        await eventually(lambda: not our_connections(raw))
        again = await layer.run(server.target(), "DBSIZE", [], access="read")  # and reconnects when needed
        assert isinstance(again, RedisResult)
    finally:
        await layer.aclose()


async def test_a_new_password_retires_the_old_connections(server: RunningRedis, raw: redis.Redis, data: RedisData):
    assert isinstance(await data.run(server.target(), "DBSIZE", [], access="read"), RedisResult)
    stale = await data.run(server.target(password="not-the-password"), "DBSIZE", [], access="read")
    assert isinstance(stale, RedisUnavailable) and stale.failure.kind == "auth_failed"
    await eventually(lambda: not our_connections(raw))  # the connections made with the old one are gone


async def test_a_timeout_closes_the_connection_so_a_late_reply_is_never_read_as_the_next_one(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    raw.set("a", "first")
    raw.set("b", "second")
    target = server.target()
    assert isinstance(await data.run(target, "EXISTS", ["a"], access="read"), RedisResult)  # table and connection ready
    raw.execute_command("CLIENT", "PAUSE", "1000", "ALL")
    try:
        async with asyncio.timeout(5):
            late = await data.run(target, "GET", ["a"], access="read", timeout=0.3)
    finally:
        raw.execute_command("CLIENT", "UNPAUSE")
    assert isinstance(late, RedisNoAnswer) and late.failure.kind == "timeout" and not late.writes
    following = await data.run(target, "GET", ["b"], access="read")
    assert isinstance(following, RedisResult) and following.value == "second"


# --- describe ---------------------------------------------------------------------------------------


async def test_describe_reports_the_instance_and_a_sample_of_keys(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    raw.set("str", "hello", px=600_000)
    raw.rpush("list", *range(7))
    raw.hset("hash", mapping={"a": 1, "b": 2})
    raw.sadd("set", "x", "y", "z")
    raw.zadd("zset", {"m": 1})
    raw.xadd("stream", {"f": "v"})
    raw.set(b"\xffbin", "1")
    raw.set("n" * 500, "1")
    server.raw(2).set("other", "1")
    outcome = await data.describe(server.target(), detail=True)
    assert isinstance(outcome, RedisDescription)
    assert outcome.version and outcome.version.split(".")[0].isdigit()
    assert (outcome.mode, outcome.role, outcome.eviction_policy, outcome.protocol) == (
        "standalone",
        "master",
        "noeviction",
        3,
    )
    assert outcome.memory_used_bytes and outcome.memory_used_bytes > 0 and outcome.memory_max_bytes == 0
    assert [(d.db, d.keys, d.expires) for d in outcome.databases] == [(0, 8, 1), (2, 1, 0)]
    assert outcome.sample is not None and outcome.sample.cursor == "0" and outcome.sample.scan_calls == 1
    keys = {str(k.name) if isinstance(k.name, str) else "other": k for k in outcome.sample.keys}
    assert (keys["str"].type, keys["str"].length) == ("string", 5) and 0 < (keys["str"].ttl_ms or 0) <= 600_000
    assert (keys["list"].type, keys["list"].length, keys["list"].ttl_ms) == ("list", 7, None)
    assert (keys["hash"].length, keys["set"].length, keys["zset"].length, keys["stream"].length) == (2, 3, 1, 1)
    assert all(k.memory_bytes and k.encoding for k in outcome.sample.keys)
    names = [k.name for k in outcome.sample.keys]
    assert {"$bytes_base64": "/2Jpbg=="} in names
    assert {"$cut": {"shown": "n" * 200, "bytes": 500}} in names


async def test_describe_time_is_bounded_by_the_sample_not_the_key_count(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    with raw.pipeline(transaction=False) as pipe:
        for i in range(20_000):
            pipe.set(f"key:{i}", i)
        pipe.execute()
    outcome = await data.describe(server.target(), sample=5)
    assert isinstance(outcome, RedisDescription) and outcome.sample is not None
    assert len(outcome.sample.keys) == 5 and outcome.sample.scan_calls == 1 and outcome.sample.cursor != "0"
    assert outcome.sample.keys[0].memory_bytes is None  # compact by default
    raw.flushall()
    for i in range(0, 20_000, 2_000):  # a sparse keyspace: SCAN pages come back empty, calls stay capped
        raw.set(f"key:{i}", i)
    sparse = await data.describe(server.target(), sample=50)
    assert isinstance(sparse, RedisDescription) and sparse.sample is not None and sparse.sample.scan_calls <= 10


# --- check_connection -------------------------------------------------------------------------------


async def test_check_reports_each_step(server: RunningRedis, data: RedisData):
    report = await data.check(server.target())
    assert report.failure is None and report.authenticated and report.protocol == "RESP3" and report.tls is None
    assert report.server_version and report.tcp_ms is not None and report.round_trip_ms is not None


async def test_check_diagnoses_a_wrong_password(server: RunningRedis, data: RedisData):
    report = await data.check(server.target(password="wrong"))
    assert report.failure is not None and report.failure.kind == "auth_failed" and not report.authenticated
    assert report.tcp_ms is not None


async def test_check_diagnoses_a_closed_port(server: RunningRedis, data: RedisData):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = await data.check(RunningRedis("127.0.0.1", port).target())
    assert report.failure is not None and report.failure.kind == "refused"


async def test_check_diagnoses_an_unreachable_host():
    """A TCP connect nobody answers (as behind a security group that drops packets): a listener whose
    accept queue is full drops further SYNs, so the connect times out."""
    with socket.socket() as listener, socket.socket() as first:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        first.connect(listener.getsockname())  # fills the queue
        report = await RedisData(connect_timeout=0.5).check(RunningRedis(*listener.getsockname()).target(), timeout=2)
    assert report.failure is not None and report.failure.kind == "unreachable" and report.failure.detail


async def _serve(answer: Callable[[bytes], bytes | None]) -> tuple[asyncio.Server, int]:
    """A TCP server that answers each read with ``answer(data)`` (None: say nothing, keep the line open)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                reply = answer(chunk)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the test ended: a handler cancelled at teardown would be logged
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    return listener, listener.sockets[0].getsockname()[1]


async def test_check_diagnoses_a_server_that_never_answers():
    listener, port = await _serve(lambda _: None)
    async with listener:
        report = await RedisData().check(RunningRedis("127.0.0.1", port).target(), timeout=0.5)
    assert report.failure is not None and report.failure.kind == "timeout" and report.tcp_ms is not None


async def test_check_diagnoses_something_that_is_not_redis():
    listener, port = await _serve(lambda _: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    async with listener:
        report = await RedisData().check(RunningRedis("127.0.0.1", port).target(), timeout=2)
    assert report.failure is not None and report.failure.kind == "protocol"


async def test_check_diagnoses_tls_asked_of_a_plain_server(server: RunningRedis):
    """redis-server reads a ClientHello as the start of an inline command and waits for its end."""
    report = await RedisData(tls=RedisTls(verify=False), connect_timeout=0.5).check(server.target(), timeout=2)
    assert report.failure is not None and report.failure.kind == "tls_failed" and report.tcp_ms is not None


def _resp2_only(chunk: bytes) -> bytes:
    """Just enough of a Redis 5 for the handshake and a GET. HELLO is an unknown command there, and
    Redis 5 repeats an unknown command's first arguments in its error: the password among them."""

    def bulk(text: bytes) -> bytes:
        return b"$%d\r\n%s\r\n" % (len(text), text)

    words = [w for w in chunk.split(b"\r\n") if w and w[:1] not in b"*$"]
    replies = []
    while words:
        name = words.pop(0).upper()
        if name == b"HELLO":
            echoed = b", ".join(b"`%s`" % w for w in words[:4])
            replies.append(b"-ERR unknown command `HELLO`, with args beginning with: %s\r\n" % echoed)
            del words[:4]
        elif name == b"AUTH":
            words.pop(0)
            replies.append(b"+OK\r\n")
        elif name == b"INFO":
            words.pop(0)
            replies.append(bulk(b"# Server\r\nredis_version:5.0.14\r\n"))
        elif name == b"PING":
            replies.append(b"+PONG\r\n")
        elif name == b"COMMAND":
            replies.append(b"*1\r\n*6\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n")
        elif name == b"GET":
            words.pop(0)
            replies.append(bulk(b"hello"))
    return b"".join(replies)


async def test_resp2_is_used_when_the_server_refuses_hello_3(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    listener, port = await _serve(_resp2_only)
    async with listener:
        target = RunningRedis("127.0.0.1", port).target()
        layer = RedisData()
        try:
            report = await layer.check(target, timeout=2)
            assert report.failure is None and report.protocol == "RESP2" and report.server_version == "5.0.14"
            got = await layer.run(target, "GET", ["k"], access="read", timeout=2)
            assert isinstance(got, RedisResult) and got.protocol == 2 and got.value == "hello"
            assert await layer.run(target, "SET", ["k", "v"], access="write") == RedisRefused("SET", "unknown_command")
        finally:
            await layer.aclose()
    assert_secret_absent(caplog.text + repr([report, got]), "the logs or outcomes")


# --- the password -----------------------------------------------------------------------------------


async def test_the_password_appears_in_no_log_outcome_or_repr(
    server: RunningRedis, raw: redis.Redis, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)  # every logger, redis-py's own included
    layer = RedisData(idle_seconds=0.1)
    seen: list[object] = []
    try:
        target = server.target()
        seen.append(target)
        seen.append(await layer.check(target))
        seen.append(await layer.check(server.target(password=PASSWORD + "x")))
        seen.append(await layer.run(target, "SET", ["k", "v"], access="write"))
        seen.append(await layer.run(target, "GET", ["k"], access="read"))
        seen.append(await layer.run(target, "CLIENT", ["INFO"], access="read"))
        seen.append(await layer.run(target, "CONFIG", ["GET", "requirepass"], access="read"))
        seen.append(await layer.run(server.target(password=PASSWORD + "x"), "GET", ["k"], access="read"))
        seen.append(await layer.describe(target, detail=True))
        raw.execute_command("CLIENT", "PAUSE", "500", "ALL")
        seen.append(await layer.run(target, "GET", ["k"], access="read", timeout=0.2))
        await asyncio.sleep(0.6)
        seen.append(layer)
    finally:
        await layer.aclose()
    assert_secret_absent(caplog.text, "the logs")
    assert_secret_absent(repr(seen), "an outcome or a repr")
    assert_secret_absent(str(seen), "an outcome's str")
