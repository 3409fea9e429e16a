"""``delete_<kind>``: a confirmed delete, for every kind.

The body reads "decide, audit, present": how the delete ends (``DeleteEnd``) is decided first (the
target is already gone, the confirmation refused it, or the API's answer to the DELETE), then each
end has one audit record (``_AUDITED``) and one result or error (``_present``). A confirmed delete
is recorded as confirmed before the DELETE is sent, so the trail shows the decision even when the
request then fails. A delete that happened also removes the instance's credentials file and is
remembered (``Runtime.deletions``), so a later look-up of the id says when and by whom.
"""

# No `from __future__ import annotations`: the SDK must evaluate these signatures, closures included.

import datetime
from dataclasses import dataclass
from typing import Annotated

from mcp.server.mcpserver import Context, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from redu_mcp.api import AnyKind, Instance, ReduClient, ReduError
from redu_mcp.provisioning.audit import Outcome
from redu_mcp.provisioning.delete import Deleted, StillThere, Unverified, delete_instance
from redu_mcp.provisioning.deletions import Deletion
from redu_mcp.server.arguments import ConfirmName, InstanceId, id_sources
from redu_mcp.server.confirmation import Decision, confirmed_by, refusal_of, resolvers
from redu_mcp.server.kinds import KindChoice, either
from redu_mcp.server.refusals import Refusal
from redu_mcp.server.runtime import Runtime, runtime_of
from redu_mcp.server.specs import DESTROYS, Offer, ToolSpec
from redu_mcp.server.tools._common import audit, deleted_here
from redu_mcp.server.wording import PAGE_APPROVAL, Wording


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


@dataclass(frozen=True)
class Afterwards:
    """What a delete that happened tidied up: the credentials file removed (or why it was not)."""

    removed: str | None = None
    not_removed: str | None = None


def _afterwards(ctx: Context, kind: AnyKind, target: Instance, decision: Decision) -> Afterwards:
    """Forget the deleted instance: remove its credentials file, and remember the deletion."""
    runtime = runtime_of(ctx)
    deletion = Deletion(
        kind.name,
        target.id,
        target.name,
        datetime.datetime.now(datetime.UTC),
        runtime.principal(),
        confirmed_by(decision) or "the user",  # a delete always needs approving: never None here
    )
    runtime.deletions.remember(runtime.caller_identity(), deletion)
    try:
        removed = runtime.credentials.remove(runtime.principal(), kind, target)
    except OSError as exc:
        return Afterwards(not_removed=exc.strerror or type(exc).__name__)
    return Afterwards(removed=str(removed) if removed else None)


def _present(
    runtime: Runtime, kind: AnyKind, id: int, target: Instance | None, end: DeleteEnd, after: Afterwards
) -> DeleteResult:
    """The result of each end (or the error a model reads)."""
    words: Wording = runtime.words
    if isinstance(end, AlreadyGone) or target is None:
        message = words.already_gone(kind, id, deleted_here(runtime, kind, id))
        return DeleteResult(deleted=False, kind=kind.name, id=id, message=message)
    match end:
        case Deleted():
            message = words.deleted(kind, target, after.removed, after.not_removed)
            return DeleteResult(deleted=True, kind=kind.name, id=id, name=target.name, message=message)
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
        after = Afterwards()
        if target is None:
            end = AlreadyGone()
        elif (refusal := refusal_of(decision)) is not None:
            end = refusal
        else:
            audit(ctx, tool, kind, "confirmed", id=id, name=name, detail=f"by {confirmed_by(decision)}")
            end = await _delete(runtime.client(), kind, target)
            if isinstance(end, Deleted):
                await runtime.close_connections(kind.name, id)  # its connections lead nowhere now
                after = _afterwards(ctx, kind, target, decision)
        outcome, detail = _audited(end)
        audit(ctx, tool, kind, outcome, id=id, name=name, detail=detail)
        return _present(runtime, kind, id, target, end, after)

    return ToolSpec(
        name=f"delete_{kind.name}",
        title=f"Delete a {kind.label}",
        description=lambda offer: _description(kind, offer),
        profile=DESTROYS,
        fn=delete,
        arguments=id_sources,
    )


def _description(kind: AnyKind, offer: Offer) -> str:
    """What a delete does, true at this server's confirm mode: with and without a client that can ask."""
    sources = [tool for tool in (f"list_{kind.collection}", f"get_{kind.name}") if offer.has(tool)]
    name = f"its exact current name{f' (from {either(sources)})' if sources else ''}"
    irreversible = (
        f"Permanently delete a {kind.label} and all its data (irreversible). Pass id and confirm_name, {name}."
    )
    if offer.confirm == "human":
        where = f" (from {either(sources)})" if sources else ""
        return (
            f"Permanently delete a {kind.label} and all its data (irreversible). Pass its id{where}. On this server "
            f"only {PAGE_APPROVAL} (then tell the user: they can delete it in the Redu console). A confirm_name that "
            "is not its exact current name is always refused."
        )
    return (
        f"{irreversible} A client that can ask the user asks, and only the user's yes deletes; otherwise the "
        "matching confirm_name deletes, and a call without it is refused. A different confirm_name is always refused."
    )
