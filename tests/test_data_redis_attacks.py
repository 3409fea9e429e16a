"""The Redis data layer under attack, against a real redis-server (issue 20).

The attacker controls the command and its arguments (through an agent) and wants to change data at
``read``, reach the server's administration, hold connections, or flood the result. Each test
checks from outside, on a raw connection, that nothing changed, and that no call hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from redu_mcp.data import RedisCaps, RedisData, RedisNeedsConfirmation, RedisRefused, RedisResult
from redu_mcp.data._redis_commands import CommandSpec, classify
from redu_mcp.data._redis_run import command_table
from tests.redis_data_support import RunningRedis, needs_redis_server, started_redis

pytestmark = pytest.mark.skipif(needs_redis_server is not None, reason=f"engines missing: {needs_redis_server}")


@pytest.fixture(scope="module")
def server() -> Iterator[RunningRedis]:
    with started_redis() as running:
        yield running


@pytest.fixture
def raw(server: RunningRedis) -> Iterator[redis.Redis]:
    client = server.raw()
    client.flushall()
    client.set("k", "v")
    client.rpush("list", "a", "b")
    client.config_resetstat()
    yield client
    client.close()


@pytest.fixture
async def data() -> AsyncIterator[RedisData]:
    layer = RedisData()
    yield layer
    await layer.aclose()


def snapshot(raw: redis.Redis) -> dict:
    """All an attack at read could change: each key's serialised value and TTL, every database's
    counts, the data directory, and that the server still answers."""
    keys = {key: (raw.dump(key), raw.pttl(key)) for key in raw.scan_iter(count=1000)}
    return {"keys": keys, "keyspace": raw.info("keyspace"), "dir": raw.config_get("dir"), "alive": raw.ping()}


#: Commands the raw client runs (snapshot, stats) and the layer's own handshake (HELLO 3 AUTH):
#: their counts say nothing about what the attacker got through.
NOT_THE_ATTACKERS = {"scan", "dump", "pttl", "info", "config|get", "ping", "hello"}


def calls_of(raw: redis.Redis, command: str, arguments: list[str]) -> int:
    """How many times the server ran ``command`` (or its subcommand) since the stats were reset."""
    names = {command.lower()} | ({f"{command.lower()}|{arguments[0].lower()}"} if arguments else set())
    stats = raw.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names - NOT_THE_ATTACKERS)


ATTACKS_AT_READ = [
    ("SET", ["k", "x"], "writes_data"),
    ("DEL", ["k"], "writes_data"),
    ("EXPIRE", ["k", "10"], "writes_data"),
    ("FLUSHALL", [], "writes_data"),
    ("CONFIG", ["SET", "dir", "/tmp"], "administrative"),
    ("EVAL", ["redis.call('set','k','v')", "0"], "scripting"),
    ("MULTI", [], "session_state"),
    ("SUBSCRIBE", ["news"], "pubsub"),
    ("BLPOP", ["k", "0"], "blocking"),
    ("DEBUG", ["SLEEP", "10"], "administrative"),
    ("CLIENT", ["KILL", "TYPE", "normal"], "administrative"),
    ("SHUTDOWN", ["NOSAVE"], "administrative"),
    ("MODULE", ["LOAD", "/tmp/evil.so"], "administrative"),
    ("KEYS", ["*"], "use_scan"),
    ("SELECT", ["1"], "session_state"),
    ("CLIENT", ["REPLY", "OFF"], "session_state"),
    ("CLIENT", ["NO-EVICT", "ON"], "administrative"),
    ("HELLO", ["2"], "session_state"),
    ("ACL", ["SETUSER", "evil", "on", ">x", "+@all"], "administrative"),
    ("FUNCTION", ["FLUSH"], "scripting"),
    ("EVAL_RO", ["return 1", "0"], "scripting"),
    ("SAVE", [], "administrative"),
    ("REPLICAOF", ["127.0.0.1", "1"], "administrative"),
    # Not on any list of ours: the instance's own flags and categories refuse them.
    ("LPUSH", ["list", "x"], "writes_data"),
    ("SETRANGE", ["k", "0", "x"], "writes_data"),
    ("PFADD", ["hll", "a"], "writes_data"),
    ("COPY", ["k", "k2"], "writes_data"),
    ("SORT", ["list", "ALPHA", "STORE", "k"], "dangerous"),
    ("RESTORE", ["k3", "0", "\x00"], "dangerous"),
    ("CLIENT", ["LIST"], "administrative"),
    ("XREAD", ["BLOCK", "0", "STREAMS", "s", "$"], "blocking"),
    ("MEMORY", ["PURGE"], "not_a_data_command"),
    ("INFO", [], "dangerous"),
]


@pytest.mark.parametrize(
    ("command", "arguments", "reason"), ATTACKS_AT_READ, ids=[" ".join([c, *a[:1]]) for c, a, _ in ATTACKS_AT_READ]
)
async def test_at_read_each_attack_is_refused_before_it_is_sent_and_nothing_changes(
    server: RunningRedis, raw: redis.Redis, data: RedisData, command: str, arguments: list[str], reason: str
):
    before = snapshot(raw)
    async with asyncio.timeout(5):  # nothing hangs
        outcome = await data.run(server.target(), command, arguments, access="read", timeout=2)
    assert isinstance(outcome, RedisRefused), outcome
    assert outcome.reason == reason
    assert snapshot(raw) == before
    assert calls_of(raw, command, arguments) == 0  # never reached the server


async def test_a_command_name_with_a_crlf_is_refused_unrepeated_and_arguments_stay_arguments(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    before = snapshot(raw)
    refused = await data.run(server.target(), "GET k\r\nFLUSHALL", [], access="read")
    assert refused == RedisRefused(None, "invalid_name")
    for name in ("", "GET K", "GET\x00", "ÉCHO", "A" * 65, "CLIENT|KILL"):
        assert await data.run(server.target(), name, [], access="read") == RedisRefused(None, "invalid_name")
    # In an argument a CRLF is just bytes of a key name (arguments travel as length-prefixed strings)
    injected = await data.run(server.target(), "GET", ["k\r\nFLUSHALL\r\n"], access="read")
    assert isinstance(injected, RedisResult) and injected.value is None
    assert snapshot(raw) == before and calls_of(raw, "flushall", []) == 0


async def test_unknown_commands_and_subcommands_are_refused_before_anything_is_sent(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    target = server.target()
    assert await data.run(target, "NOSUCHCMD", ["a"], access="write") == RedisRefused("NOSUCHCMD", "unknown_command")
    assert await data.run(target, "OBJECT", ["NOPE", "k"], access="read") == RedisRefused(
        "OBJECT NOPE", "unknown_subcommand"
    )
    assert await data.run(target, "OBJECT", [], access="read") == RedisRefused("OBJECT", "unknown_subcommand")
    assert await data.run(target, "OBJECT", ["a b"], access="read") == RedisRefused("OBJECT", "unknown_subcommand")
    stats = raw.info("commandstats")
    assert not [name for name in stats if "nosuch" in name or "object" in name]


async def test_every_command_the_instance_flags_as_a_write_is_refused_at_read(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    """The instance's own table decides: walk all of it, subcommands included."""
    table = await command_table(data._pools, server.target(), 0)
    specs: list[tuple[str, list[str], CommandSpec]] = []
    for spec in table.commands.values():
        if spec.subcommands:
            specs += [(spec.name, [sub], found) for sub, found in spec.subcommands.items()]
        else:
            specs.append((spec.name, [], spec))
    assert len(specs) > 300  # Redis 7 has ≈ 240 commands and ≈ 130 subcommands
    writes = [(name, sub) for name, sub, spec in specs if "write" in spec.flags]
    assert len(writes) > 80
    before = snapshot(raw)
    for name, sub in writes:
        outcome = await data.run(server.target(), name, [*sub, "k", "v", "1"], access="read")
        assert isinstance(outcome, RedisRefused), (name, sub, outcome)
    assert snapshot(raw) == before
    for name, sub, spec in specs:  # and nothing passes at read that the instance does not flag read-only
        verdict = classify(table, name, sub, "read")
        if not isinstance(verdict, RedisRefused):
            assert "readonly" in spec.flags and "write" not in spec.flags, name
            assert not spec.categories & {"dangerous", "admin", "blocking", "pubsub", "scripting"}, name


async def test_a_write_command_passes_at_write_but_the_forbidden_ones_still_do_not(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    target = server.target()
    assert isinstance(await data.run(target, "SET", ["k", "new"], access="write"), RedisResult)
    assert raw.get("k") == b"new"
    for command, arguments, _ in ATTACKS_AT_READ:
        outcome = await data.run(target, command, arguments, access="write")
        if command in {"SET", "DEL", "EXPIRE", "LPUSH", "SETRANGE", "PFADD", "COPY"}:
            continue  # plain writes: allowed at write
        assert isinstance(outcome, RedisRefused | RedisNeedsConfirmation), (command, outcome)
    assert raw.config_get("dir") == snapshot(raw)["dir"] and raw.ping()


async def test_flushall_at_write_needs_a_confirmation_and_changes_nothing_without_it(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    target = server.target()
    before = snapshot(raw)
    assert await data.run(target, "FLUSHALL", [], access="write") == RedisNeedsConfirmation("FLUSHALL", "instance")
    assert await data.run(target, "FLUSHDB", ["ASYNC"], access="write") == RedisNeedsConfirmation("FLUSHDB", "database")
    assert await data.run(target, "FLUSHDB", [], access="read", confirmed=True) == RedisRefused(
        "FLUSHDB", "writes_data"
    )
    assert snapshot(raw) == before and calls_of(raw, "flushall", []) + calls_of(raw, "flushdb", []) == 0
    done = await data.run(target, "FLUSHDB", [], access="write", confirmed=True)
    assert isinstance(done, RedisResult) and done.writes and raw.dbsize() == 0


async def test_a_10_mb_value_comes_back_capped_with_the_getrange_that_continues_it(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    value = b"0123456789" * 1_048_576
    raw.set("big", value)
    outcome = await data.run(server.target(), "GET", ["big"], access="read")
    assert isinstance(outcome, RedisResult) and isinstance(outcome.value, str)
    cut = outcome.truncation
    assert (
        cut is not None
        and cut.unit == "bytes"
        and cut.total == len(value)
        and cut.shown == len(outcome.value) == 20_000
    )
    assert cut.next_call == ("GETRANGE", "big", "20000", "39999")
    following = await data.run(
        server.target(), str(cut.next_call[0]), [str(a) for a in cut.next_call[1:]], access="read"
    )
    assert isinstance(following, RedisResult) and following.value == value[20_000:40_000].decode()


async def test_100000_list_elements_come_back_capped_with_the_lrange_that_continues_them(
    server: RunningRedis, raw: redis.Redis, data: RedisData
):
    with raw.pipeline(transaction=False) as pipe:
        for start in range(0, 100_000, 10_000):
            pipe.rpush("many", *range(start, start + 10_000))
        pipe.execute()
    outcome = await data.run(server.target(), "LRANGE", ["many", "0", "-1"], access="read")
    assert isinstance(outcome, RedisResult) and outcome.value == [str(i) for i in range(100)]
    cut = outcome.truncation
    assert cut is not None and (cut.unit, cut.total, cut.shown) == ("items", 100_000, 100)
    assert cut.next_call == ("LRANGE", "many", "100", "-1")
    following = await data.run(
        server.target(), "LRANGE", [str(a) for a in cut.next_call[1:]], access="read", caps=RedisCaps(max_elements=5)
    )
    assert isinstance(following, RedisResult) and following.value == ["100", "101", "102", "103", "104"]
    assert raw.llen("many") == 100_000
