"""What tool bodies share: API failures as tool errors, the audit line, and a 404 worded with the
tool that fits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from redu_mcp.api import AnyKind, ReduError
from redu_mcp.provisioning.audit import AuditRecord, Outcome
from redu_mcp.provisioning.deletions import Deletion
from redu_mcp.provisioning.lookups import other_instance_with
from redu_mcp.server.runtime import Runtime, runtime_of


@contextmanager
def reported_as_tool_error(runtime: Runtime, doing: str, note: str = "") -> Iterator[None]:
    """Turn an API failure into an error result a model can act on: what failed, why, what next."""
    try:
        yield
    except ReduError as exc:
        raise ToolError(runtime.words.failure(doing, exc, note)) from None


def audit(
    ctx: Context[Any, Any],
    tool: str,
    kind: AnyKind,
    outcome: Outcome,
    *,
    id: int | None = None,
    name: str | None = None,
    detail: str | None = None,
    **change: Any,
) -> None:
    """One line in the audit trail (when one is configured): who did what to which instance.
    ``change``: what a data tool ran (``statement``, ``tables``, ``sha256``, ``rows``)."""
    runtime = runtime_of(ctx)
    request_id = str(ctx.request_id) if ctx.request_id is not None else None
    record = AuditRecord(runtime.principal(), tool, kind.name, outcome, id, name, request_id, detail, **change)
    runtime.audit.record(record)


def deleted_here(runtime: Runtime, kind: AnyKind, id: int) -> Deletion | None:
    """This server's deletion of the instance, if it remembers one (for this caller only)."""
    return runtime.deletions.find(runtime.caller_identity(), kind.name, id)


async def not_found_error(runtime: Runtime, kind: AnyKind, id: int, tool: Literal["get", "wait"]) -> ToolError:
    """A 404, worded with what this server deleted, or else with another kind's instance that has
    this id (one more GET per kind)."""
    deleted = deleted_here(runtime, kind, id)
    other = None if deleted is not None else await other_instance_with(runtime.client(), kind, id)
    return ToolError(runtime.words.not_found(kind, id, other, tool, deleted))
