"""What a Redis data call ends with: typed, without prose (the MCP face words each one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redu_mcp.data._redis_commands import RedisNeedsConfirmation, RedisRefused
from redu_mcp.data._redis_values import JsonValue
from redu_mcp.data._target import ConnectionFailure


@dataclass(frozen=True)
class RedisTruncation:
    """What the caps left out, and how to get it."""

    unit: Literal["items", "bytes"]  # what ``total`` and ``shown`` count: top-level items, or a string's bytes
    total: int
    shown: int
    cut_inside: int = 0  # strings, lists and maps inside the value that were shortened ("$cut", "$more")
    next_call: tuple[JsonValue, ...] | None = None  # run this (same database) for what follows
    use_instead: str | None = None  # no next call: this command pages such data (HSCAN, SSCAN…)


@dataclass(frozen=True)
class RedisResult:
    command: str  # as shown: "GET", "OBJECT ENCODING"
    db: int
    value: JsonValue
    writes: bool  # the instance flags the command as a write
    keys: int | None  # keys the arguments name (None: the instance cannot say without asking)
    protocol: int  # 3 (RESP3) or 2
    truncation: RedisTruncation | None = None


@dataclass(frozen=True)
class RedisCommandError:
    """The server answered with an error: nothing else happened (Redis commands are atomic)."""

    command: str
    code: str  # the server's prefix: ERR, WRONGTYPE, NOPERM, OOM, READONLY, MOVED…
    message: str
    writes: bool


@dataclass(frozen=True)
class RedisNoAnswer:
    """The command was sent, then no complete answer came: the call's timeout passed (``failure.kind``
    ``"timeout"``) or the connection broke. The connection was closed; a write may have happened
    anyway (the server finishes what it started)."""

    command: str
    writes: bool
    failure: ConnectionFailure


@dataclass(frozen=True)
class RedisUnavailable:
    """No connection could be had; nothing was sent."""

    failure: ConnectionFailure


RedisRunOutcome = (
    RedisResult | RedisCommandError | RedisNoAnswer | RedisUnavailable | RedisRefused | RedisNeedsConfirmation
)
