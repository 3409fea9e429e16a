"""``wait_for_ready``: wait while an instance of any kind provisions, with progress, within a deadline."""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from collections.abc import Mapping
from typing import Annotated, Any, Final

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from redu_mcp.api import NotFoundError, RetryPolicy
from redu_mcp.provisioning.waiting import Poll, wait_until_ready
from redu_mcp.server import wording
from redu_mcp.server.arguments import InstanceId, id_sources
from redu_mcp.server.kinds import ALL_KINDS, KindChoice, called, either, kind_named
from redu_mcp.server.results import Connection, InstanceView
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import READS, ToolSpec
from redu_mcp.server.tools._common import not_found_error

DEFAULT_WAIT_SECONDS: Final = 40.0
MAX_WAIT_SECONDS: Final = 45.0  # each call ends well before the ~60 s after which desktop clients give up


class WaitResult(BaseModel):
    ready: bool
    instance: InstanceView
    waited_seconds: float = Field(description="How long this call waited")
    seconds_since_created: float | None = Field(default=None, description="Age of the instance, when known")
    connection: Connection | None = None
    credentials_file: str | None = None
    next_step: str


async def wait_for_ready(
    kind: Annotated[KindChoice, Field(description=either(called(k) for k in ALL_KINDS))],
    id: InstanceId,
    ctx: Context,
    timeout_seconds: Annotated[
        float,
        Field(gt=0, le=MAX_WAIT_SECONDS, description="Seconds this call may wait (default 40, at most 45)"),
    ] = DEFAULT_WAIT_SECONDS,
) -> WaitResult:
    runtime = runtime_of(ctx)
    target = kind_named(kind)
    # No retries for polls: the wait polls again at its interval anyway.
    client = runtime.client_or_tool_error(f"wait for {target.label} {id}").with_retry(RetryPolicy.none())

    async def progress(poll: Poll) -> None:
        await ctx.report_progress(min(poll.elapsed, timeout_seconds), timeout_seconds, wording.poll_progress(poll))

    outcome = await wait_until_ready(
        runtime.board,
        (runtime.caller_identity(), kind, id),
        lambda: client.get_instance(target, id),
        interval=runtime.settings.poll_interval,
        on_poll=progress,
    )
    if isinstance(outcome.error, NotFoundError):
        raise await not_found_error(runtime, target, id, "wait")
    problem = runtime.words.wait_failure(target, id, outcome, timeout_seconds)
    if problem is not None:
        raise ToolError(problem)
    instance = outcome.instance
    assert instance is not None  # wait_failure covers a wait that saw no instance
    # The API's own answer to this caller (a shared snapshot never decides a host: see waiting).
    path = runtime.credentials.complete(runtime.principal(), target, instance) if outcome.ready else None
    credentials_file = str(path) if path else None
    age = wording.age_of(instance)
    return WaitResult(
        ready=outcome.ready,
        instance=InstanceView.of(target, instance),
        waited_seconds=round(outcome.elapsed, 1),
        seconds_since_created=None if age is None else round(age, 1),
        connection=Connection.of(target, instance) if outcome.ready else None,
        credentials_file=credentials_file,
        next_step=runtime.words.wait_next_step(target, outcome, credentials_file),
    )


def wait_deadline(arguments: Mapping[str, Any]) -> float:
    """A wait's deadline is its own ``timeout_seconds``."""
    timeout = arguments.get("timeout_seconds", DEFAULT_WAIT_SECONDS)
    return float(timeout) if isinstance(timeout, (int, float)) else DEFAULT_WAIT_SECONDS


TOOL: Final = ToolSpec(
    name="wait_for_ready",
    title="Wait until an instance is ready",
    description=(
        f"Wait while a {either(k.name for k in ALL_KINDS)} instance provisions, with progress, for up to "
        "timeout_seconds. "
        "ready=true: connection details. ready=false: call it again (provisioning can take minutes); never "
        "create another instance because of it. Read-only."
    ),
    profile=READS,
    fn=wait_for_ready,
    deadline=wait_deadline,
    arguments=id_sources,
)
