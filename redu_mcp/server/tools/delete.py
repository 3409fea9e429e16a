"""``delete_<kind>``: a confirmed delete, for every kind.

The body reads "decide, audit, present": how the delete ends (``DeleteEnd``) is decided first (the
target is already gone, the confirmation refused it, or the API's answer to the DELETE), then each
end has one audit record (``_AUDITED``) and one result or error (``_present``). A confirmed delete
is recorded as confirmed before the DELETE is sent, so the trail shows the decision even when the
request then fails.
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

from dataclasses import dataclass
from typing import Annotated

from mcp.server.mcpserver import Context, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from redu_mcp.api import AnyKind, Instance, ReduClient, ReduError
from redu_mcp.provisioning.audit import Outcome
from redu_mcp.provisioning.delete import Deleted, StillThere, Unverified, delete_instance
from redu_mcp.server.arguments import ConfirmName, InstanceId
from redu_mcp.server.confirmation import Decision, confirmed_by, refusal_of, resolvers
from redu_mcp.server.kinds import KindChoice
from redu_mcp.server.refusals import Refusal
from redu_mcp.server.runtime import runtime_of
from redu_mcp.server.specs import DESTROYS, ToolSpec
from redu_mcp.server.tools._common import audit
from redu_mcp.server.wording import Wording


class DeleteResult(BaseModel):
    deleted: bool
    kind: KindChoice
    id: int
    name: str | None = None
    message: str


@dataclass(frozen=True)
class AlreadyGone:
    """There was nothing to delete."""


@dataclass(frozen=True)
class DeleteFailed:
    """The DELETE itself failed."""

    error: ReduError


DeleteEnd = AlreadyGone | Refusal | Deleted | StillThere | Unverified | DeleteFailed


def _audited(end: DeleteEnd) -> tuple[Outcome, str | None]:
    """The audit record of each end: its outcome and detail."""
    match end:
        case AlreadyGone():
            return "already_gone", None
        case Refusal(why=why):
            return "refused", why
        case Deleted():
            return "deleted", None
        case StillThere():
            return "not_deleted", None
        case Unverified():
            return "delete_failed", "unverified"
        case DeleteFailed(error=error):
            return "delete_failed", type(error).__name__


def _present(words: Wording, kind: AnyKind, id: int, target: Instance | None, end: DeleteEnd) -> DeleteResult:
    """The result of each end (or the error a model reads)."""
    if isinstance(end, AlreadyGone) or target is None:
        return DeleteResult(deleted=False, kind=kind.name, id=id, message=words.already_gone(kind, id))
    match end:
        case Deleted():
            return DeleteResult(
                deleted=True, kind=kind.name, id=id, name=target.name, message=words.deleted(kind, target)
            )
        case Refusal():
            message = words.refused(kind, target, end)
        case StillThere():
            message = words.still_there(kind, target, end)
        case Unverified():
            raise ToolError(words.delete_unverified(kind, target, end))
        case DeleteFailed(error=error):
            raise ToolError(words.failure(f"delete {kind.label} {target.id}", error))
    return DeleteResult(deleted=False, kind=kind.name, id=id, name=target.name, message=message)


async def _delete(client: ReduClient, kind: AnyKind, target: Instance) -> DeleteEnd:
    try:
        return await delete_instance(client, kind, target)
    except ReduError as exc:
        return DeleteFailed(exc)


def delete_tool(kind: AnyKind) -> ToolSpec:
    current, confirmation = resolvers(kind)

    async def delete(
        id: InstanceId,
        ctx: Context,
        target: Annotated[Instance | None, Resolve(current)],
        decision: Annotated[Decision, Resolve(confirmation)],
        confirm_name: ConfirmName = None,
    ) -> DeleteResult:
        runtime = runtime_of(ctx)
        tool, name = f"delete_{kind.name}", target.name if target is not None else None
        end: DeleteEnd
        if target is None:
            end = AlreadyGone()
        elif (refusal := refusal_of(decision)) is not None:
            end = refusal
        else:
            audit(ctx, tool, kind, "confirmed", id=id, name=name, detail=f"by {confirmed_by(decision)}")
            end = await _delete(runtime.client(), kind, target)
            if isinstance(end, Deleted):
                await runtime.pools.close_instance(kind.name, id)  # its connections lead nowhere now
        outcome, detail = _audited(end)
        audit(ctx, tool, kind, outcome, id=id, name=name, detail=detail)
        return _present(runtime.words, kind, id, target, end)

    return ToolSpec(
        name=f"delete_{kind.name}",
        title=f"Delete a {kind.label}",
        description=(
            f"Permanently delete a {kind.label} and all its data (irreversible). Pass id and confirm_name, the "
            f"instance's exact current name (from list_{kind.collection} or get_{kind.name}); if the client can "
            "ask the user, the user must also confirm. Without both, nothing is deleted."
        ),
        profile=DESTROYS,
        fn=delete,
    )
