"""Which Redis commands a data call may run, decided from the instance's own ``COMMAND`` table.

The instance says what each command is: its flags (``readonly``, ``write``, ``admin``, ``blocking``…)
and ACL categories (``@dangerous``, ``@scripting``…), for its own version and modules, subcommands
included (Redis 7 lists ``client|kill`` under ``client``). At ``read`` only commands it flags
``readonly`` pass; at ``write`` also those it flags ``write``; never anything in ``@admin``,
``@dangerous``, ``@blocking``, ``@pubsub`` or ``@scripting``. The short lists below only name the
commands whose refusal deserves its own reason (and keep refusing them if an instance reports odd
flags); they never allow anything the flags refuse.

``COMMAND DOCS`` is not used: it adds prose (summaries, arguments) and ≈ 10× the bytes, no flag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

RedisAccess = Literal["read", "write"]

RedisRefusalReason = Literal[
    "invalid_name",  # not a command name (only ASCII letters, digits, '_', '-', '.'; at most 64)
    "unknown_command",  # the instance has no such command
    "unknown_subcommand",  # a container command (CLIENT, OBJECT, XINFO…) without a subcommand it knows
    "use_scan",  # KEYS walks every key in one go: SCAN pages through them
    "administrative",  # server administration: CONFIG, DEBUG, MODULE, ACL, SHUTDOWN, replication, persistence…
    "dangerous",  # the instance files it under @dangerous (SORT, RESTORE, INFO, SWAPDB…)
    "scripting",  # EVAL*, FCALL*, SCRIPT, FUNCTION: a script can run any command
    "blocking",  # waits for data or replicas (BLPOP, WAIT, XREAD…): it would hold a connection
    "pubsub",  # SUBSCRIBE, PUBLISH…: a subscribed connection stops answering commands
    "session_state",  # changes the connection (SELECT, MULTI, WATCH, HELLO, AUTH, CLIENT SETNAME…)
    "writes_data",  # at read: the instance flags it as a write
    "not_a_data_command",  # flagged neither read-only nor write (PING, CLIENT INFO, MEMORY STATS…)
]

#: Command names as this layer accepts them (module commands have dots: JSON.GET, FT.SEARCH).
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")

_SCRIPTING_PREFIXES = ("eval", "fcall")  # EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO
_ALWAYS_REFUSED: Mapping[str, RedisRefusalReason] = {
    **dict.fromkeys(
        (
            "config", "debug", "module", "shutdown", "acl", "replicaof", "slaveof", "migrate", "save",
            "bgsave", "bgrewriteaof", "sync", "psync", "replconf", "failover", "cluster", "monitor",
            "swapdb", "slowlog", "latency", "lastsave", "sentinel", "client|kill", "client|pause",
            "client|unpause", "client|unblock", "client|no-evict",
        ),
        "administrative",
    ),
    **dict.fromkeys(("script", "function"), "scripting"),
    **dict.fromkeys(
        ("blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "wait", "waitaof"),
        "blocking",
    ),
    **dict.fromkeys(
        ("subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "publish",
         "spublish", "pubsub"),
        "pubsub",
    ),
    **dict.fromkeys(
        ("select", "multi", "exec", "discard", "watch", "unwatch", "hello", "auth", "reset", "quit", "readonly",
         "readwrite", "asking", "client|setname", "client|setinfo", "client|reply", "client|tracking",
         "client|caching", "client|no-touch"),
        "session_state",
    ),
    "keys": "use_scan",
}  # fmt: skip

#: Emptying a database needs a confirmation (the face asks), then runs at ``write``.
_FLUSHES: Mapping[str, Literal["database", "instance"]] = {"flushdb": "database", "flushall": "instance"}


@dataclass(frozen=True)
class CommandSpec:
    """One entry of the instance's ``COMMAND`` reply."""

    name: str  # lower case; "client|kill" for a subcommand
    arity: int
    flags: frozenset[str]
    categories: frozenset[str]  # without the "@"
    first_key: int
    last_key: int
    key_step: int
    subcommands: Mapping[str, CommandSpec] = field(default_factory=dict)  # by subcommand name ("kill")


class CommandTable:
    """The instance's commands by lower-case name, read once from its ``COMMAND`` reply."""

    def __init__(self, commands: Mapping[str, CommandSpec]) -> None:
        self.commands = commands

    @classmethod
    def from_reply(cls, reply: object) -> CommandTable:
        """Parse ``COMMAND`` (RESP2 or RESP3, names as bytes); ``ValueError`` if it is not one."""
        if not isinstance(reply, list):
            raise ValueError("COMMAND did not answer a list")
        specs = (_spec(entry) for entry in reply)
        return cls({spec.name: spec for spec in specs})


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").lower()
    if isinstance(value, str):
        return value.lower()
    raise ValueError("COMMAND entry field is not a string")


def _spec(entry: object) -> CommandSpec:
    if not isinstance(entry, list) or len(entry) < 6:
        raise ValueError("COMMAND entry is not a list of at least 6 fields")
    name, arity, flags, first, last, step = entry[:6]
    if not all(isinstance(number, int) for number in (arity, first, last, step)):
        raise ValueError("COMMAND entry has a non-integer arity or key position")
    categories = entry[6] if len(entry) > 6 else []  # Redis 6+
    subcommands = entry[9] if len(entry) > 9 else []  # Redis 7+
    if not isinstance(flags, list) or not isinstance(categories, list) or not isinstance(subcommands, list):
        raise ValueError("COMMAND entry has malformed flags, categories or subcommands")
    full_name = _text(name)
    subs = (_spec(sub) for sub in subcommands)
    return CommandSpec(
        name=full_name,
        arity=arity,
        flags=frozenset(_text(flag) for flag in flags),
        categories=frozenset(_text(category).removeprefix("@") for category in categories),
        first_key=first,
        last_key=last,
        key_step=step,
        subcommands={sub.name.partition("|")[2]: sub for sub in subs},
    )


@dataclass(frozen=True)
class Allowed:
    command: str  # as shown: "GET", "OBJECT ENCODING"
    spec: CommandSpec
    writes: bool  # flagged write (audit it)
    keys: int | None  # how many keys the arguments name; None when the instance cannot say without asking


@dataclass(frozen=True)
class RedisRefused:
    command: str | None  # as shown; None when the name is not valid (it is never repeated)
    reason: RedisRefusalReason


@dataclass(frozen=True)
class RedisNeedsConfirmation:
    command: str  # "FLUSHDB" or "FLUSHALL"
    scope: Literal["database", "instance"]  # FLUSHDB empties the call's database, FLUSHALL every one


Decision = Allowed | RedisRefused | RedisNeedsConfirmation


def flush_needing_confirmation(name: str) -> RedisNeedsConfirmation | None:
    """What ``classify`` asks a confirmation for at ``write``, judged by the name alone, so the face
    can ask before anything is sent (the instance's table is not needed for that)."""
    scope = _FLUSHES.get(name.lower()) if _NAME.fullmatch(name) else None
    return RedisNeedsConfirmation(name.upper(), scope) if scope is not None else None


def classify(
    table: CommandTable,
    name: str,
    arguments: Sequence[str | bytes],
    access: RedisAccess,
    *,
    confirmed: bool = False,
) -> Decision:
    """Whether ``name arguments…`` may run at ``access``; nothing is sent to decide it.

    ``confirmed``: the face has had a FLUSHDB/FLUSHALL confirmed (and checked ``--access full``).
    """
    if not _NAME.fullmatch(name):
        return RedisRefused(None, "invalid_name")
    key = name.lower()
    shown = key.upper()
    if key.startswith(_SCRIPTING_PREFIXES):
        return RedisRefused(shown, "scripting")
    if key in _ALWAYS_REFUSED:
        return RedisRefused(shown, _ALWAYS_REFUSED[key])
    spec = table.commands.get(key)
    if spec is None:
        return RedisRefused(shown, "unknown_command")
    if spec.subcommands:
        sub = _subcommand_name(arguments[0]) if arguments else None
        if sub is None:
            return RedisRefused(shown, "unknown_subcommand")
        key, shown = f"{key}|{sub}", f"{shown} {sub.upper()}"
        if key in _ALWAYS_REFUSED:
            return RedisRefused(shown, _ALWAYS_REFUSED[key])
        found = spec.subcommands.get(sub)
        if found is None:
            return RedisRefused(shown, "unknown_subcommand")
        spec = found
    if key in _FLUSHES and "write" in spec.flags:
        if access == "read":
            return RedisRefused(shown, "writes_data")
        if not confirmed:
            return RedisNeedsConfirmation(shown, _FLUSHES[key])
        return Allowed(shown, spec, writes=True, keys=0)
    reason = _refusal_by_flags(spec, access)
    if reason is not None:
        return RedisRefused(shown, reason)
    return Allowed(shown, spec, writes="write" in spec.flags, keys=_key_count(spec, len(arguments) + 1))


def _subcommand_name(argument: str | bytes) -> str | None:
    text = argument.decode("ascii", "replace") if isinstance(argument, bytes) else argument
    return text.lower() if _NAME.fullmatch(text) else None


def _refusal_by_flags(spec: CommandSpec, access: RedisAccess) -> RedisRefusalReason | None:
    flags, categories = spec.flags, spec.categories
    if "admin" in flags or "admin" in categories:
        return "administrative"
    if "dangerous" in categories:
        return "dangerous"
    if "blocking" in flags or "blocking" in categories:
        return "blocking"
    if "pubsub" in flags or "pubsub" in categories:
        return "pubsub"
    if "scripting" in categories:
        return "scripting"
    if "write" in flags:
        return "writes_data" if access == "read" else None
    if "readonly" in flags:
        return None
    return "not_a_data_command"


def _key_count(spec: CommandSpec, argc: int) -> int | None:
    """Keys named by an ``argc``-long call (name included), from the legacy first/last/step triple."""
    if "movablekeys" in spec.flags:
        return None
    if spec.first_key <= 0 or spec.key_step <= 0:
        return 0
    last = spec.last_key if spec.last_key >= 0 else argc + spec.last_key
    return len(range(spec.first_key, min(last, argc - 1) + 1, spec.key_step))
