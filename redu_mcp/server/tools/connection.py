"""``check_connection``: can this server reach an instance and log in with its saved password?

Step by step (TCP, TLS, authentication, one round trip), each timed, and where it stops, why: a
model can tell the user whether to look at security groups, wait, or replace a stale password.
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ClassVar, Final

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from redu_mcp.api import DATABASE, REDIS
from redu_mcp.data import ConnectionReport, Target, check_connection
from redu_mcp.server.arguments import InstanceId, id_sources
from redu_mcp.server.fence import FencedResult
from redu_mcp.server.kinds import KindChoice, called, either, kind_named
from redu_mcp.server.runtime import Runtime, runtime_of
from redu_mcp.server.specs import READS_DATA, ToolSpec
from redu_mcp.server.targets import instance_for, target_for


def _check_postgres(runtime: Runtime, target: Target) -> Awaitable[ConnectionReport]:
    return check_connection(target, runtime.settings.postgres_options)


def _check_redis(runtime: Runtime, target: Target) -> Awaitable[ConnectionReport]:
    return runtime.redis.check(target)  # AUTH, HELLO 3 (or RESP2), TLS and PING, on a connection of its own


#: How each kind's connection is checked (kinds this server can use the data of).
CHECKS: Final[dict[str, Callable[[Runtime, Target], Awaitable[ConnectionReport]]]] = {
    DATABASE.name: _check_postgres,
    REDIS.name: _check_redis,
}


class ConnectionCheck(FencedResult):
    """Each step of connecting, timed; ``problem`` says where it stopped and what to do."""

    untrusted: ClassVar[tuple[str, ...]] = ("server_version",)

    ok: bool
    kind: KindChoice
    id: int
    host: str
    port: int
    tcp_ms: float | None = Field(default=None, description="TCP connect")
    tls: str | None = Field(default=None, description="What TLS negotiated; null: a plain connection")
    authenticated: bool
    session_ms: float | None = Field(default=None, description="TLS and login, until the session was ready")
    server_version: str | None = None
    round_trip_ms: float | None = Field(default=None, description="One query (SELECT 1) or PING")
    protocol: str | None = None
    problem: str | None = None


async def check(
    kind: Annotated[KindChoice, Field(description=either(called(kind_named(name)) for name in CHECKS))],
    id: InstanceId,
    ctx: Context,
) -> ConnectionCheck:
    runtime = runtime_of(ctx)
    target_kind = kind_named(kind)
    checker = CHECKS.get(kind)
    if checker is None:
        raise ToolError(f"check_connection can check {either(CHECKS)} instances only.")
    instance = await instance_for(runtime, target_kind, id, "check")
    target = target_for(runtime, target_kind, instance)
    report = await checker(runtime, target)
    fields: dict[str, Any] = {
        name: getattr(report, name)
        for name in ("tcp_ms", "tls", "authenticated", "session_ms", "server_version", "round_trip_ms", "protocol")
    }
    problem = runtime.words.unavailable(target_kind, target, report.failure) if report.failure else None
    return ConnectionCheck(
        ok=report.failure is None, kind=kind, id=id, host=report.host, port=report.port, problem=problem, **fields
    )


TOOL: Final = ToolSpec(
    name="check_connection",
    title="Check the connection to an instance",
    description=(
        "Check that this server can reach a ready instance and log in with its saved password: TCP, TLS, "
        "authentication, server version and one round trip, each timed; if a step fails, why and what to do. "
        "Read-only."
    ),
    profile=READS_DATA,
    arguments=id_sources,  # where ids come from, among the tools offered
    fn=check,
)
