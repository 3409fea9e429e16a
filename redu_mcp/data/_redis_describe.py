"""``describe_redis``: what the instance is and what its keys look like, in bounded time.

Everything comes from commands any managed Redis allows (``CONFIG`` is not one of them): ``INFO``
for version, mode, role, memory, eviction policy (``maxmemory_policy``) and keys per database; a
sample of keys from ``SCAN`` with a ``COUNT`` and a cap on calls, so the time depends on the caps
and never on how many keys there are; then ``TYPE``, ``PTTL`` and an O(1) length per sampled key
(``STRLEN``, ``LLEN``, ``SCARD``, ``ZCARD``, ``HLEN``, ``XLEN``), pipelined: four round trips for
the whole sample, plus ``MEMORY USAGE`` and ``OBJECT ENCODING`` when details are asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redu_mcp.data._redis_connection import DatabaseRefused, failure_of
from redu_mcp.data._redis_outcomes import RedisCommandError, RedisUnavailable
from redu_mcp.data._redis_pools import RedisPools
from redu_mcp.data._redis_values import JsonValue, RedisCaps, render
from redu_mcp.data._target import ConnectionFailure, Target

#: Sampled key names are shown up to this many characters ({"$cut": …} beyond).
NAME_CHARS = 200
#: Slots each SCAN call walks, and the most SCAN calls one description makes.
SCAN_COUNT = 100
MAX_SCAN_CALLS = 10

_LENGTH = {b"string": "STRLEN", b"list": "LLEN", b"set": "SCARD", b"zset": "ZCARD", b"hash": "HLEN", b"stream": "XLEN"}


@dataclass(frozen=True)
class RedisKeyspaceCount:
    db: int
    keys: int
    expires: int  # keys with a TTL


@dataclass(frozen=True)
class RedisSampledKey:
    name: JsonValue  # text, {"$bytes_base64": …}, or {"$cut": …} past NAME_CHARS
    type: str  # string, list, set, zset, hash, stream, or a module's type name
    ttl_ms: int | None  # None: no expiry
    length: int | None  # a string's bytes, a collection's items; None for module types
    memory_bytes: int | None = None  # MEMORY USAGE (details only)
    encoding: str | None = None  # OBJECT ENCODING (details only)


@dataclass(frozen=True)
class RedisKeySample:
    db: int
    keys: tuple[RedisSampledKey, ...]
    scan_calls: int
    cursor: str  # "0": the whole database was walked; else SCAN goes on from here


@dataclass(frozen=True)
class RedisDescription:
    version: str | None
    mode: str | None  # standalone, cluster or sentinel
    role: str | None  # master or slave (as INFO says)
    memory_used_bytes: int | None
    memory_max_bytes: int | None  # 0: no limit
    eviction_policy: str | None  # maxmemory_policy, e.g. noeviction, allkeys-lru
    databases: tuple[RedisKeyspaceCount, ...]  # databases holding keys
    sample: RedisKeySample | None  # None when no sample was asked for
    protocol: int


RedisDescribeOutcome = RedisDescription | RedisCommandError | RedisUnavailable


def _info(reply: object) -> dict[str, str]:
    if not isinstance(reply, bytes):
        return {}
    fields: dict[str, str] = {}
    for line in reply.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _keyspace(fields: dict[str, str]) -> tuple[RedisKeyspaceCount, ...]:
    """``db0:keys=1,expires=0,avg_ttl=0`` lines."""
    counts = []
    for key, value in fields.items():
        db = _int(key.removeprefix("db")) if key.startswith("db") else None
        numbers = dict(part.partition("=")[::2] for part in value.split(","))
        keys, expires = _int(numbers.get("keys")), _int(numbers.get("expires"))
        if db is not None and keys is not None:
            counts.append(RedisKeyspaceCount(db, keys, expires or 0))
    return tuple(sorted(counts, key=lambda count: count.db))


async def _pipeline(connection: Any, commands: Sequence[tuple[Any, ...]]) -> list[object]:
    """Send all, then read each reply; an error reply is kept as the exception, in its place."""
    from redis.exceptions import ResponseError

    if not commands:
        return []
    await connection.send_packed_command(connection.pack_commands(commands))
    replies: list[object] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response(disable_decoding=True))
        except ResponseError as exc:
            replies.append(exc)
    return replies


async def _scan(connection: Any, sample: int) -> tuple[list[bytes], bytes, int]:
    names: list[bytes] = []
    cursor, calls = b"0", 0
    while calls < MAX_SCAN_CALLS and len(names) < sample:
        (page,) = await _pipeline(connection, [("SCAN", cursor, "COUNT", SCAN_COUNT)])
        calls += 1
        if not isinstance(page, list) or len(page) != 2 or not isinstance(page[1], list):
            break
        cursor = page[0]
        names.extend(name for name in page[1] if isinstance(name, bytes))
        if cursor == b"0":
            break
    return names[:sample], cursor, calls


def _name(raw: bytes) -> JsonValue:
    shown = render(raw, RedisCaps(max_total_chars=NAME_CHARS))
    if shown.shown is not None and shown.total is not None and shown.shown < shown.total:
        return {"$cut": {"shown": shown.value, "bytes": shown.total}}
    return shown.value


async def _sample(connection: Any, names: list[bytes], detail: bool) -> tuple[RedisSampledKey, ...]:
    types_ttls = await _pipeline(connection, [(command, name) for name in names for command in ("TYPE", "PTTL")])
    types, ttls = types_ttls[::2], types_ttls[1::2]
    sizes: list[tuple[Any, ...]] = []
    for name, kind in zip(names, types, strict=True):
        sizes.append((_LENGTH[kind], name) if isinstance(kind, bytes) and kind in _LENGTH else ("EXISTS", name))
        if detail:
            sizes += [("MEMORY", "USAGE", name), ("OBJECT", "ENCODING", name)]
    measured = await _pipeline(connection, sizes)
    step = 3 if detail else 1
    keys = []
    for index, (name, kind, ttl) in enumerate(zip(names, types, ttls, strict=True)):
        if not isinstance(kind, bytes) or kind == b"none" or not isinstance(ttl, int):
            continue  # gone since SCAN saw it
        length, *more = measured[index * step : index * step + step]
        known = isinstance(length, int) and kind in _LENGTH
        memory, encoding = more if detail else (None, None)
        keys.append(
            RedisSampledKey(
                name=_name(name),
                type=kind.decode("utf-8", "replace"),
                ttl_ms=ttl if ttl >= 0 else None,
                length=length if known and isinstance(length, int) else None,
                memory_bytes=memory if isinstance(memory, int) else None,
                encoding=encoding.decode("utf-8", "replace") if isinstance(encoding, bytes) else None,
            )
        )
    return tuple(keys)


async def describe_redis(
    pools: RedisPools, target: Target, *, db: int, sample: int, detail: bool, timeout: float
) -> RedisDescribeOutcome:
    from redis.exceptions import RedisError

    if db < 0 or sample < 0:
        raise ValueError("a database index and a sample size are 0 or more")
    keys: RedisKeySample | None = None
    try:
        async with asyncio.timeout(timeout):
            async with pools.connection(target, db) as connection:
                protocol = connection.get_protocol()
                sections = ("server", "memory", "replication", "keyspace")
                server, memory, replication, keyspace = map(
                    _info, await _pipeline(connection, [("INFO", section) for section in sections])
                )
                if sample:
                    names, cursor, calls = await _scan(connection, sample)
                    keys = RedisKeySample(
                        db, await _sample(connection, names, detail), calls, cursor.decode("ascii", "replace")
                    )
    except TimeoutError:
        return RedisUnavailable(ConnectionFailure("timeout", f"no complete answer within {timeout:g} s"))
    except DatabaseRefused as exc:
        return RedisCommandError("SELECT", exc.code, exc.message, writes=False)
    except (RedisError, OSError) as exc:
        return RedisUnavailable(failure_of(exc, target))
    return RedisDescription(
        version=server.get("redis_version"),
        mode=server.get("redis_mode"),
        role=replication.get("role"),
        memory_used_bytes=_int(memory.get("used_memory")),
        memory_max_bytes=_int(memory.get("maxmemory")),
        eviction_policy=memory.get("maxmemory_policy"),
        databases=_keyspace(keyspace),
        sample=keys,
        protocol=int(protocol),
    )
