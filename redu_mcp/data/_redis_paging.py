"""What to call next when a reply was cut: the range, cursor or keys that continue it.

Only commands whose next part can be named exactly get a ``next_call``: a string goes on with
``GETRANGE`` from the byte where it was cut (one cap's worth: the caller knows the total); ``LRANGE``/``ZRANGE`` by index from the next index
(negative indexes stay negative, counted from the same end, so the list's length is not needed);
``ZRANGE … BYSCORE|BYLEX`` and ``Z*RANGEBY*`` with a ``LIMIT`` offset; ``XRANGE``/``XREVRANGE``
after the last ID shown (exclusive); ``MGET``/``HMGET``/``SMISMEMBER`` with the names not shown.
A ``SCAN``-family page cannot be resumed half-way: it is asked again from the same cursor with a
smaller ``COUNT`` (small collections come whole whatever the ``COUNT``: then nothing is offered).
Whole-collection reads say which command pages them instead (``HGETALL`` → ``HSCAN``…).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redu_mcp.data._redis_values import JsonValue, bytes_marker

Argument = str | bytes


@dataclass(frozen=True)
class Continuation:
    next_call: tuple[JsonValue, ...] | None = None  # command and arguments (bytes marked) for what follows
    use_instead: str | None = None  # when there is no next call: the command that pages this kind of data


_PAGED_BY = {"hgetall": "HSCAN", "hkeys": "HSCAN", "hvals": "HSCAN", "smembers": "SSCAN"}
_SCANS = {"scan": 0, "hscan": 1, "sscan": 1, "zscan": 1}  # position of the cursor in the arguments
_BY_LIMIT = {"zrangebyscore", "zrevrangebyscore", "zrangebylex", "zrevrangebylex"}


def as_json(argument: Argument) -> JsonValue:
    if isinstance(argument, str):
        return argument
    try:
        return argument.decode("utf-8")
    except UnicodeDecodeError:
        return bytes_marker(argument)


def _call(*parts: Argument | int) -> Continuation:
    return Continuation(next_call=tuple(as_json(str(part) if isinstance(part, int) else part) for part in parts))


def _int(argument: Argument) -> int | None:
    try:
        return int(argument)
    except ValueError:
        return None


def _option(arguments: Sequence[Argument], name: str) -> int | None:
    """Index of the option ``name`` (case-insensitive) among ``arguments``."""
    wanted = name.lower()
    for index, argument in enumerate(arguments):
        text = argument.decode("latin-1") if isinstance(argument, bytes) else argument
        if text.lower() == wanted:
            return index
    return None


def _next_index(start: int, stop: int, total: int, shown: int) -> int | None:
    """Where a ``start..stop`` range that returned ``total`` items goes on after ``shown`` of them."""
    if start >= 0:
        return start + shown
    if stop < 0:  # the range ends ``-stop`` items from the end: count back from there
        return stop - (total - shown) + 1
    return None  # a negative start with a positive stop: its first index depends on the length


def string_continuation(
    command: str, arguments: Sequence[Argument], total: int, shown: int, chunk: int
) -> Continuation:
    """A top-level string reply cut after ``shown`` of its ``total`` bytes; ask ``chunk`` bytes more."""
    if command in {"get", "getex"} and arguments:
        return _call("GETRANGE", arguments[0], shown, shown + chunk - 1)
    if command in {"getrange", "substr"} and len(arguments) == 3:
        start, stop = _int(arguments[1]), _int(arguments[2])
        if start is not None and stop is not None:
            after = _next_index(start, stop, total, shown)
            if after is not None:
                return _call(command.upper(), arguments[0], after, stop)
    return Continuation()


def list_continuation(
    command: str, arguments: Sequence[Argument], reply: Sequence[object], shown: int, width: int
) -> Continuation:
    """A top-level list reply cut after ``shown`` items (``width`` items per member: 2 for flat pairs)."""
    members, total = shown // width, len(reply) // width
    if command in _PAGED_BY:
        return Continuation(use_instead=_PAGED_BY[command])
    if command in {"mget", "hmget", "smismember"}:
        fixed = 0 if command == "mget" else 1
        return _call(command.upper(), *arguments[:fixed], *arguments[fixed + members :])
    if command in {"xrange", "xrevrange"} and len(arguments) >= 3 and members:
        return _stream_continuation(command, arguments, reply[members - 1], members)
    if command in _BY_LIMIT or (
        command == "zrange" and (_option(arguments, "byscore") is not None or _option(arguments, "bylex") is not None)
    ):
        return _limit_continuation(command, arguments, members)
    if command in {"lrange", "zrange", "zrevrange"} and len(arguments) >= 3:
        start, stop = _int(arguments[1]), _int(arguments[2])
        if start is not None and stop is not None:
            after = _next_index(start, stop, total, members)
            if after is not None:
                return _call(command.upper(), arguments[0], after, stop, *arguments[3:])
    return Continuation()


def _stream_continuation(command: str, arguments: Sequence[Argument], last: object, members: int) -> Continuation:
    if not isinstance(last, list) or not last or not isinstance(last[0], bytes):
        return Continuation()
    rest = list(arguments[3:])
    count_at = _option(rest, "count")
    if count_at is not None and count_at + 1 < len(rest):
        count = _int(rest[count_at + 1])
        if count is None:
            return Continuation()
        rest[count_at + 1] = str(count - members)
    after = b"(" + last[0]
    if command == "xrange":  # XRANGE key start end: go on after the last ID
        return _call("XRANGE", arguments[0], after, arguments[2], *rest)
    return _call("XREVRANGE", arguments[0], arguments[1], after, *rest)  # XREVRANGE key end start


def _limit_continuation(command: str, arguments: Sequence[Argument], members: int) -> Continuation:
    rest = list(arguments)
    offset, count = 0, -1
    limit_at = _option(rest, "limit")
    if limit_at is not None:
        if limit_at + 2 >= len(rest):
            return Continuation()
        given_offset, given_count = _int(rest[limit_at + 1]), _int(rest[limit_at + 2])
        if given_offset is None or given_count is None:
            return Continuation()
        offset, count = given_offset, given_count
        del rest[limit_at : limit_at + 3]
    next_count = count - members if count >= 0 else -1
    return _call(command.upper(), *rest, "LIMIT", offset + members, next_count)


def scan_continuation(command: str, arguments: Sequence[Argument], shown: int, width: int) -> Continuation:
    """A ``SCAN``-family page whose items were cut after ``shown``: the same cursor, a smaller COUNT."""
    cursor_at = _SCANS[command]
    if len(arguments) <= cursor_at:
        return Continuation()
    rest = list(arguments)
    asked = 10  # the server's default COUNT
    count_at = _option(rest[cursor_at + 1 :], "count")
    if count_at is not None:
        count_at += cursor_at + 1
        given = _int(rest[count_at + 1]) if count_at + 1 < len(rest) else None
        if given is None:
            return Continuation()
        asked = given
        del rest[count_at : count_at + 2]
    smaller = max(1, shown // width)
    if smaller >= asked:
        return Continuation()  # the page was already small: the collection comes whole
    return _call(command.upper(), *rest, "COUNT", smaller)
