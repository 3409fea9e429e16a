"""Running one command the instance's own flags allow, and its reply as capped JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from redu_mcp.data._redis_commands import Allowed, CommandTable, RedisAccess, classify
from redu_mcp.data._redis_connection import DatabaseRefused, failure_of
from redu_mcp.data._redis_outcomes import (
    RedisCommandError,
    RedisNoAnswer,
    RedisResult,
    RedisRunOutcome,
    RedisTruncation,
    RedisUnavailable,
)
from redu_mcp.data._redis_paging import (
    Continuation,
    list_continuation,
    scan_continuation,
    string_continuation,
)
from redu_mcp.data._redis_pools import RedisPools
from redu_mcp.data._redis_values import JsonValue, RedisCaps, error_parts, render
from redu_mcp.data._target import ConnectionFailure, Target

_SCANS = {"scan", "hscan", "sscan", "zscan"}
_PAIR_OPTIONS = ("withscores", "withvalues")


async def command_table(pools: RedisPools, target: Target, db: int) -> CommandTable:
    """The instance's ``COMMAND`` table, read once per principal and instance."""
    instance = await pools.instance(target)
    async with instance.table_lock:
        if instance.table is None:
            async with pools.connection(target, db) as connection:
                await connection.send_command("COMMAND")
                instance.table = CommandTable.from_reply(await connection.read_response(disable_decoding=True))
        return instance.table


async def run_command(
    pools: RedisPools,
    target: Target,
    command: str,
    arguments: Sequence[str | bytes],
    *,
    access: RedisAccess,
    db: int,
    timeout: float,
    caps: RedisCaps,
    confirmed: bool,
) -> RedisRunOutcome:
    from redis.exceptions import RedisError, ResponseError

    if any(not isinstance(argument, str | bytes) for argument in arguments):
        raise TypeError("Redis arguments are str or bytes")
    if db < 0:
        raise ValueError("a database index is 0 or more")
    decision: Allowed | None = None
    try:
        async with asyncio.timeout(timeout):
            table = await command_table(pools, target, db)
            verdict = classify(table, command, arguments, access, confirmed=confirmed)
            if not isinstance(verdict, Allowed):
                return verdict
            async with pools.connection(target, db) as connection:
                protocol = connection.get_protocol()
                await connection.send_command(command, *arguments)
                decision = verdict
                reply = await connection.read_response(disable_decoding=True)
    except ResponseError as exc:
        code, message = error_parts(exc)
        if decision is None:  # COMMAND itself was refused (an ACL user without it): not a usable instance
            return RedisUnavailable(ConnectionFailure("protocol", f"{code} {message}"))
        return RedisCommandError(decision.command, code, message, decision.writes)
    except DatabaseRefused as exc:  # SELECT failed, maybe before the command was judged: never echo it
        return RedisCommandError("SELECT", exc.code, exc.message, writes=False)
    except TimeoutError:
        failure = ConnectionFailure("timeout", f"no complete answer within {timeout:g} s")
        return (
            RedisUnavailable(failure) if decision is None else RedisNoAnswer(decision.command, decision.writes, failure)
        )
    except (RedisError, OSError, ValueError) as exc:  # ValueError: a COMMAND reply this layer cannot read
        failure = failure_of(exc, target)
        return (
            RedisUnavailable(failure) if decision is None else RedisNoAnswer(decision.command, decision.writes, failure)
        )
    value, truncation = shape(command.lower(), arguments, reply, caps)
    return RedisResult(decision.command, db, value, decision.writes, decision.keys, int(protocol), truncation)


def shape(
    command: str, arguments: Sequence[str | bytes], reply: object, caps: RedisCaps
) -> tuple[JsonValue, RedisTruncation | None]:
    """The reply as JSON within ``caps``, and what was left out with how to get it."""
    if command in _SCANS and isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list):
        return _shape_scan(command, arguments, reply[0], reply[1], caps)
    width = 2 if isinstance(reply, list) and _flat_pairs(command, arguments, reply) else 1
    rendered = render(reply, caps, pair_width=width)
    if not rendered.truncated:
        return rendered.value, None
    assert rendered.total is not None and rendered.shown is not None  # only strings, lists and maps are cut
    if isinstance(reply, bytes):
        rest = string_continuation(command, arguments, rendered.total, rendered.shown, caps.max_total_chars)
        return rendered.value, _truncation("bytes", rendered.total, rendered.shown, 0, rest)
    whole: list[Any] = list(reply) if isinstance(reply, list | Mapping) else []
    more = (
        list_continuation(command, arguments, whole, rendered.shown, width) if rendered.shown < rendered.total else None
    )
    return rendered.value, _truncation("items", rendered.total, rendered.shown, rendered.cut_inside, more)


def _shape_scan(
    command: str, arguments: Sequence[str | bytes], cursor: object, items: list[Any], caps: RedisCaps
) -> tuple[JsonValue, RedisTruncation | None]:
    """A SCAN-family page, ``[cursor, items]``: the caps apply to its items."""
    width = 1 if command in {"scan", "sscan"} or _has(arguments, "novalues") else 2
    rendered = render(items, caps, pair_width=width)
    cursor_text = cursor.decode("ascii", "replace") if isinstance(cursor, bytes) else str(cursor)
    value: JsonValue = [cursor_text, rendered.value]
    if not rendered.truncated:
        return value, None
    assert rendered.total is not None and rendered.shown is not None  # a list was rendered
    more = scan_continuation(command, arguments, rendered.shown, width) if rendered.shown < rendered.total else None
    return value, _truncation("items", rendered.total, rendered.shown, rendered.cut_inside, more)


def _truncation(
    unit: Literal["items", "bytes"], total: int, shown: int, cut_inside: int, more: Continuation | None
) -> RedisTruncation:
    more = more or Continuation()
    return RedisTruncation(unit, total, shown, cut_inside, more.next_call, more.use_instead)


def _has(arguments: Sequence[str | bytes], option: str) -> bool:
    return any((a.decode("latin-1") if isinstance(a, bytes) else a).lower() == option for a in arguments)


def _flat_pairs(command: str, arguments: Sequence[str | bytes], reply: list[Any]) -> bool:
    """A RESP2 reply that lists field, value, field, value… (RESP3 nests each pair, or sends a map)."""
    if reply and isinstance(reply[0], list):
        return False
    return command == "hgetall" or any(_has(arguments, option) for option in _PAIR_OPTIONS)
