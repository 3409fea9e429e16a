"""``describe_redis``: what a Redis instance is and what its keys look like, in bounded time."""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from typing import Annotated, Any, ClassVar, Final

from mcp.server.mcpserver import Context, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from redu_mcp.api import REDIS, Instance
from redu_mcp.data import (
    RedisCommandError,
    RedisDescription,
    RedisKeyspaceCount,
    RedisSampledKey,
    RedisUnavailable,
)
from redu_mcp.server.arguments import InstanceId, id_sources
from redu_mcp.server.fence import FencedResult
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import READS_DATA, Offer, ToolSpec
from redu_mcp.server.targets import current_instance, target_for

MAX_SAMPLE: Final = 100


class SampledKey(BaseModel):
    name: Any = Field(description="Text, {'$bytes_base64': ...}, or {'$cut': ...} for a long name")
    type: str
    ttl_ms: int | None = Field(default=None, description="Time to live; null: no expiry")
    length: int | None = Field(default=None, description="A string's bytes, or a collection's items")
    memory_bytes: int | None = None
    encoding: str | None = None

    @classmethod
    def of(cls, key: RedisSampledKey) -> "SampledKey":
        return cls(
            name=key.name,
            type=key.type,
            ttl_ms=key.ttl_ms,
            length=key.length,
            memory_bytes=key.memory_bytes,
            encoding=key.encoding,
        )


class RedisOverview(FencedResult):
    """The instance (its own words for version, mode and policy are data) and a sample of its keys."""

    untrusted: ClassVar[tuple[str, ...]] = ("version", "mode", "role", "eviction_policy", "keys")

    version: str | None = None
    mode: str | None = Field(default=None, description="standalone, cluster or sentinel")
    role: str | None = Field(default=None, description="master or slave (a replica)")
    memory_used_bytes: int | None = None
    memory_max_bytes: int | None = Field(default=None, description="maxmemory; 0: no limit")
    eviction_policy: str | None = Field(default=None, description="maxmemory-policy, e.g. noeviction")
    databases: list[RedisKeyspaceCount] = Field(description="Databases holding keys, with their key counts")
    db: int = Field(description="The database sampled")
    keys: list[SampledKey] = Field(description="Sampled keys with type, TTL and length (detail: memory, encoding)")
    sampled_all: bool = Field(description="True when the sample walked the whole database")
    next_step: str | None = None


def _next_step(description: RedisDescription, db: int, asked: int, can_scan: bool) -> str | None:
    """How to see more keys than the sample (``can_scan``: run_redis_command is offered)."""
    sample = description.sample
    if sample is None or sample.cursor == "0":
        return None
    held = next((count.keys for count in description.databases if count.db == db), None)
    ways = [f"call describe_redis with a larger sample (at most {MAX_SAMPLE})"] if asked < MAX_SAMPLE else []
    if can_scan:
        cursor = f"'{sample.cursor}'" if sample.cursor.isdigit() else "the cursor it returns"
        ways.append(
            f"call run_redis_command with command='SCAN' and arguments [{cursor}, 'COUNT', '100'] (db {db}), then "
            "again with each cursor it returns until '0'"
        )
    of = f" of {held}" if held is not None else ""
    return f"A sample of {len(sample.keys)}{of} keys." + (f" To see more, {', or '.join(ways)}." if ways else "")


instance = current_instance(REDIS, "describe")


async def describe(
    id: InstanceId,
    ctx: Context,
    target: Annotated[Instance, Resolve(instance)],
    db: Annotated[int, Field(ge=0, le=1023, description="The database to sample keys from (default 0)")] = 0,
    sample: Annotated[int, Field(ge=0, le=MAX_SAMPLE, description="Keys to sample (default 20; 0: none)")] = 20,
    detail: Annotated[bool, Field(description="Also each sampled key's memory use and encoding")] = False,
) -> RedisOverview:
    runtime = runtime_of(ctx)
    connection = target_for(runtime, REDIS, target)
    outcome = await runtime.redis.describe(connection, db=db, sample=sample, detail=detail)
    match outcome:
        case RedisCommandError():
            raise ToolError(runtime.words.redis_failed(outcome, db))
        case RedisUnavailable(failure=failure):
            raise ToolError(runtime.words.unavailable(REDIS, connection, failure))
    keys = outcome.sample
    return RedisOverview(
        version=outcome.version,
        mode=outcome.mode,
        role=outcome.role,
        memory_used_bytes=outcome.memory_used_bytes,
        memory_max_bytes=outcome.memory_max_bytes,
        eviction_policy=outcome.eviction_policy,
        databases=list(outcome.databases),
        db=db,
        keys=[SampledKey.of(key) for key in keys.keys] if keys is not None else [],
        sampled_all=keys is not None and keys.cursor == "0",
        next_step=_next_step(outcome, db, sample, "run_redis_command" in runtime.words.offered),
    )


def _description(offer: Offer) -> str:
    before = " Call it before run_redis_command." if offer.has("run_redis_command") else ""
    return (
        "What a Redis instance is and holds: version, mode, memory used and its limit, eviction policy, keys per "
        "database, and a sample of keys with type, TTL and length (compact; detail adds memory and encoding)."
        f"{before} Read-only."
    )


TOOL: Final = ToolSpec(
    name="describe_redis",
    title="Describe a Redis instance",
    description=_description,
    profile=READS_DATA,
    fn=describe,
    arguments=id_sources,  # where ids come from, among the tools offered
)
