"""``run_redis_command``: one Redis command, allowed or refused by the instance's own command table.

At ``--data read`` only what the instance flags read-only runs; at ``--data write`` its writes too;
never administration, scripts, blocking or pub/sub commands, nor what changes the connection.
``FLUSHDB``/``FLUSHALL`` are first confirmed like a delete (and need ``--access full``). The reply
reaches the model inside the untrusted-data fence, capped, with the call that continues it. The
body reads "decide, audit, present".
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

import base64
import binascii
from typing import Annotated, Any, ClassVar, Final

from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from opentelemetry.trace import Span
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from redu_mcp.api import REDIS, Instance
from redu_mcp.data import (
    RedisCommandError,
    RedisNeedsConfirmation,
    RedisNoAnswer,
    RedisRefused,
    RedisResult,
    RedisRunOutcome,
    RedisUnavailable,
    Target,
    flush_needing_confirmation,
)
from redu_mcp.provisioning.audit import Outcome
from redu_mcp.server.arguments import ConfirmName, InstanceId, id_sources
from redu_mcp.server.confirmation import (
    ChangeDecision,
    ConfirmChange,
    NameCheck,
    ask_or_check,
    confirmed_by,
    refusal_of,
)
from redu_mcp.server.fence import FencedResult
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import READS_DATA, WRITES_DATA, Offer, ToolSpec
from redu_mcp.server.targets import current_instance, target_for
from redu_mcp.server.telemetry import data_span, name_operation
from redu_mcp.server.tools._common import audit
from redu_mcp.server.wording import Wording, approval

NAME: Final = "run_redis_command"
#: Characters of one argument (an agent writes values in its own tokens: larger ones are not its to send).
MAX_ARGUMENT_CHARS: Final = 100_000
MAX_ARGUMENTS: Final = 500
MAX_DB: Final = 1023


class BinaryArgument(BaseModel):
    """Bytes that are not text, as ``{"$bytes_base64": "..."}`` (the form results show them in)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoded: str = Field(alias="$bytes_base64")


_ARGUMENT_SCHEMA: Final = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_ARGUMENT_CHARS},
        {
            "type": "object",
            "properties": {"$bytes_base64": {"type": "string", "maxLength": MAX_ARGUMENT_CHARS}},
            "required": ["$bytes_base64"],
            "additionalProperties": False,
        },
    ]
}
Argument = Annotated[str | BinaryArgument, WithJsonSchema(_ARGUMENT_SCHEMA)]
Arguments = Annotated[
    list[Argument] | None,
    Field(
        max_length=MAX_ARGUMENTS,
        description=(
            "The command's arguments in order, each a string (e.g. ['user:1', 'name'] for HGET), or "
            "{'$bytes_base64': ...} for bytes that are not text"
        ),
    ),
]
Command = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description=(
            "One Redis command name, e.g. 'GET', 'HGETALL', 'SCAN'; a subcommand is the first argument "
            "(command 'OBJECT', arguments ['ENCODING', key])"
        ),
    ),
]
Db = Annotated[int, Field(ge=0, le=MAX_DB, description="The logical database to run it on (default 0)")]


class NextCall(BaseModel):
    """The call that returns what a capped reply left out (its arguments come from the data)."""

    command: str
    arguments: list[Any]  # JSON already (text or {"$bytes_base64": ...}); Any keeps the schema small


class RedisReply(FencedResult):
    """What a command returned (capped), and whether the instance counts it as a write."""

    untrusted: ClassVar[tuple[str, ...]] = ("value", "next_call")

    command: str = Field(description="The command as the instance knows it, e.g. 'GET' or 'OBJECT ENCODING'")
    db: int
    writes: bool = Field(description="Whether the instance flags it as a write (it ran, and is kept)")
    # Any, not JsonValue: the value is JSON already, and a recursive schema costs a client that checks
    # results against it (see run_sql's rows).
    value: Any = Field(
        description=(
            "The reply as JSON: text, or {'$bytes_base64': ...} for bytes; maps as objects; cut values marked "
            "{'$cut': ...} and {'$more': n}"
        )
    )
    truncated: str | None = Field(default=None, description="What was left out, and how to get the rest")
    next_call: NextCall | None = Field(default=None, description="The call that continues a cut reply")


# --- decide, audit, present ----------------------------------------------------------------------------


def known_name(outcome: RedisRunOutcome) -> str | None:
    """The command's name when the instance knows it: a name it does not know is the caller's text, and
    is repeated nowhere (not in a result, an audit line or a span)."""
    match outcome:
        case RedisRefused(command=command, reason=reason) if command is not None:
            if reason == "unknown_command":
                return None
            return command.split(" ")[0] if reason == "unknown_subcommand" else command
        case RedisResult() | RedisCommandError() | RedisNoAnswer() | RedisNeedsConfirmation():
            return outcome.command
    return None


def _audited(outcome: RedisRunOutcome) -> tuple[Outcome, str | None]:
    match outcome:
        case RedisResult():
            return "ran", None
        case RedisRefused(reason=reason):
            return "refused", reason
        case RedisNeedsConfirmation():
            return "refused", "not confirmed"
        case RedisCommandError(code=code):
            return "command_failed", code
        case RedisNoAnswer(failure=failure):
            return "no_answer", failure.kind
        case RedisUnavailable(failure=failure):
            return "command_failed", failure.kind


def _present(words: Wording, outcome: RedisRunOutcome, connection: Target, db: int) -> RedisReply:
    match outcome:
        case RedisResult(truncation=cut):
            next_call = None
            if cut is not None and cut.next_call and isinstance(cut.next_call[0], str):
                next_call = NextCall(command=cut.next_call[0], arguments=list(cut.next_call[1:]))
            return RedisReply(
                command=outcome.command,
                db=outcome.db,
                writes=outcome.writes,
                value=outcome.value,
                truncated=words.redis_truncated(cut) if cut is not None else None,
                next_call=next_call,
            )
        case RedisRefused():
            raise ToolError(words.redis_refused(outcome))
        case RedisCommandError():
            raise ToolError(words.redis_failed(outcome, db))
        case RedisNoAnswer():
            raise ToolError(words.redis_no_answer(outcome))
        case RedisUnavailable(failure=failure):
            raise ToolError(words.unavailable(REDIS, connection, failure))
        case RedisNeedsConfirmation():
            raise AssertionError("a flush runs only once confirmed, and then it is allowed")


def _sent(arguments: list[str | BinaryArgument] | None) -> list[str | bytes]:
    """The arguments as sent: text as it is, ``$bytes_base64`` decoded (or a refusal naming which)."""
    sent: list[str | bytes] = []
    for index, argument in enumerate(arguments or ()):
        if isinstance(argument, str):
            sent.append(argument)
            continue
        try:
            sent.append(base64.b64decode(argument.encoded, validate=True))
        except binascii.Error:
            raise ToolError(
                f"Nothing was sent: arguments[{index}] is not base64 (standard alphabet, with '=' padding)."
            ) from None
    return sent


def _named(span: Span, outcome: RedisRunOutcome) -> None:
    name = known_name(outcome)
    if name is not None:
        name_operation(span, name)


instance = current_instance(REDIS, "use")


async def confirmation(
    ctx: Context,
    target: Annotated[Instance, Resolve(instance)],
    command: Command,
    db: Db = 0,
    confirm_name: ConfirmName = None,
) -> Elicit[ConfirmChange] | NameCheck:
    """Asks before FLUSHDB or FLUSHALL, at --data write; nothing to ask otherwise (at --data read the
    instance's flags refuse them)."""
    runtime = runtime_of(ctx)
    flush = flush_needing_confirmation(command) if runtime.settings.data == "write" else None
    if flush is None:
        return NameCheck(result="not_needed")
    if runtime.settings.access != "full":
        return NameCheck(result="needs_full_access")
    return ask_or_check(ctx, target, confirm_name, runtime.words.flush_question(target, flush, db), ConfirmChange)


async def run_redis_command_tool(
    id: InstanceId,
    command: Command,
    ctx: Context,
    target: Annotated[Instance, Resolve(instance)],
    decision: Annotated[ChangeDecision, Resolve(confirmation)],
    arguments: Arguments = None,
    db: Db = 0,
    confirm_name: ConfirmName = None,
) -> RedisReply:
    runtime = runtime_of(ctx)
    sent = _sent(arguments)
    flush = flush_needing_confirmation(command)
    said: dict[str, Any] = {"id": id, "name": target.name, "db": db}
    if (refusal := refusal_of(decision)) is not None:  # only a flush is ever asked about
        audit(ctx, NAME, REDIS, "refused", detail=refusal.why, statement=flush.command if flush else None, **said)
        raise ToolError(runtime.words.refused_change(REDIS, target, refusal))
    connection = target_for(runtime, REDIS, target)
    writing = runtime.settings.data == "write"
    if (approved := confirmed_by(decision)) is not None and flush is not None:
        audit(ctx, NAME, REDIS, "confirmed", detail=f"by {approved}", statement=flush.command, **said)
    with data_span("redis", None) as span:
        outcome = await runtime.redis.run(
            connection,
            command,
            sent,
            access="write" if writing else "read",
            db=db,
            confirmed=approved is not None,  # the user (or confirm_name) approved the flush
        )
        _named(span, outcome)
    writes = isinstance(outcome, RedisResult | RedisCommandError | RedisNoAnswer) and outcome.writes
    if writes or not isinstance(outcome, RedisResult):  # every write, and every refusal or failure
        audited, detail = _audited(outcome)
        keys = outcome.keys if isinstance(outcome, RedisResult) else None
        audit(ctx, NAME, REDIS, audited, detail=detail, statement=known_name(outcome), keys=keys, **said)
    return _present(runtime.words, outcome, connection, db)


_TITLE: Final = "Run a Redis command"


def _about(offer: Offer) -> str:
    first = " Call describe_redis first to see the keys." if offer.has("describe_redis") else ""
    return (
        "One command per call, its arguments as strings; the reply comes back as data (capped, with the call "
        f"that continues it).{first} Never: administration (CONFIG, ACL...), scripts, blocking or pub/sub "
        "commands, SELECT (pass db), MULTI. KEYS is refused: use SCAN."
    )


def _read_description(offer: Offer) -> str:
    return (
        "Run one read-only Redis command (GET, HGETALL, LRANGE, SCAN, TTL...) on a Redis instance: the instance's "
        f"own command flags decide, and writes are refused. {_about(offer)} Read-only."
    )


def _write_description(offer: Offer) -> str:
    return (
        "Run one Redis command (GET, SET, HSET, DEL, EXPIRE, SCAN...) on a Redis instance: the instance's own "
        f"command flags decide what is a read and what a write. {_about(offer)} FLUSHDB and FLUSHALL need "
        f"{approval(offer, 'instance')}."
    )


#: At --data read: only what the instance flags read-only.
READ_TOOL: Final = ToolSpec(
    name=NAME,
    title=_TITLE,
    description=_read_description,
    profile=READS_DATA,
    fn=run_redis_command_tool,
    arguments=id_sources,  # where ids come from, among the tools offered
)
#: At --data write: writes too; emptying a database is confirmed like a delete.
WRITE_TOOL: Final = ToolSpec(
    name=NAME,
    title=_TITLE,
    description=_write_description,
    profile=WRITES_DATA,
    fn=run_redis_command_tool,
    arguments=id_sources,
)
