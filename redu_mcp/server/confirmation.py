"""Who may approve a delete (or a change that destroys an instance's data), decided before anything
is done.

Two resolvers run before a delete tool's body (the SDK's ``Resolve``): ``current`` reads the target
afresh (None when it is already gone), and ``confirmation`` decides how the deletion is confirmed.
Data tools ask the same way (``ask_or_check``) when what they were given destroys data.
A ``confirm_name`` that does not match the target's current name is refused outright. Otherwise,
under ``--confirm auto``, a client that can ask its user (form elicitation) asks, and only an
explicit tick confirms; a client that cannot ask needs the exact current name in ``confirm_name``.
Under ``--confirm human`` a form proves nothing (a client can fill it in itself): a client that
declares URL-mode elicitation opens a confirmation page where a person types the name and presses
the button (``confirmation_page``), and any other client is refused. So is a 2025-11-25 client on a
``--stateless`` server, whatever it declared: without a session the server cannot send it the
question, and the refusal says so. What the model is told is worded in ``wording``.

A sealed request state (2026-07-28: the question travels in the result, the answer comes back with
the state) is good for one answering round only (``single_use_request_state``): a round that was
declined cannot be sent again with "accept". Used states are remembered (in Redis when replicas
share it) for as long as the SDK would accept them.
"""

# No `from __future__ import annotations`: the SDK evaluates these signatures (Resolve, Elicit).

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.request_state import RequestStateBoundary
from mcp.shared.exceptions import MCPError
from mcp.types import ClientCapabilities
from mcp_types import INVALID_PARAMS
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from redu_mcp.api import KINDS, AnyKind, Instance, NotFoundError, ReduError
from redu_mcp.server.approvals import Subject
from redu_mcp.server.arguments import ConfirmName, InstanceId
from redu_mcp.server.confirmation_page import Verdict, can_open_page, page_verdict
from redu_mcp.server.refusals import CannotAsk, Refusal, RefusalReason
from redu_mcp.server.runtime import Runtime, runtime_of
from redu_mcp.sharing import SeenOnce

#: Seconds a used request state is remembered: the SDK's default lifetime (600 s) and its clock skew (60 s).
REQUEST_STATE_SECONDS = 600.0 + 60.0 + 5.0


class ConfirmDelete(BaseModel):
    """The form a person answers."""

    # Strict: only a JSON true confirms. Lax pydantic would also read "yes", "on", "1" or 1 as true.
    confirm: bool = Field(strict=True, description="Delete it permanently, with all its data? This cannot be undone.")


class ConfirmChange(BaseModel):
    """The form a person answers before a change that destroys data."""

    confirm: bool = Field(strict=True, description="Make this change? What it removes cannot be brought back.")


NameCheckResult = Literal[
    "matches",
    "mismatch",
    "missing",
    "gone",
    "person_required",
    "not_needed",  # nothing destructive: no confirmation is asked for
    "needs_full_access",  # destructive, and this server's access level does not allow it at all
    # --confirm human, on the confirmation page:
    "page_approved",  # a person approved exactly this call on its page
    "page_unused",  # the page was not used (in time), or not for this call
    "page_declined",  # the user declined to open it
    "page_cancelled",
    "page_unavailable",  # the shared state pages live in cannot be reached: nothing is opened or trusted
]


class NameCheck(BaseModel):
    """The decision made without asking anyone: ``confirm_name`` against a fresh GET, or a refusal."""

    result: NameCheckResult
    given: str | None = None  # the confirm_name the caller passed
    cannot_ask: CannotAsk = "client"


Decision = ElicitationResult[ConfirmDelete | NameCheck]
ChangeDecision = ElicitationResult[ConfirmChange | NameCheck]


def can_ask_user(capabilities: ClientCapabilities | None) -> bool:
    """Does the client take form elicitations? (A bare ``elicitation: {}`` means form; url-only does not.)

    Mirrors the SDK's own check, so a client it would refuse to ask falls back to confirm_name
    instead of failing the call with a protocol error."""
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def without_back_channel(ctx: Context) -> bool:
    """Is this a handshake-era (2025-11-25 or older) request the server cannot send a question on?

    That is every such request on a ``--stateless`` server: there is no session, so no stream to
    push ``elicitation/create`` down. (2026-07-28 requests never need one: the question travels in
    the result, and any replica takes the answer.)"""
    try:
        return ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS and not ctx.session.can_send_request
    except Exception:  # no session object at all: nothing can be sent either way
        return False


_REFUSALS: dict[NameCheckResult, RefusalReason] = {
    "mismatch": "name_mismatch",
    "missing": "name_missing",
    "gone": "gone",
    "person_required": "person_required",
    "needs_full_access": "needs_full_access",
    "page_unused": "page_unused",
    "page_declined": "declined",
    "page_cancelled": "cancelled",
    "page_unavailable": "page_unavailable",
}


_ON_THE_PAGE: dict[Verdict, NameCheckResult] = {
    "approved": "page_approved",
    "unused": "page_unused",
    "declined": "page_declined",
    "cancelled": "page_cancelled",
    "unavailable": "page_unavailable",
}


def refusal_of(decision: Decision | ChangeDecision) -> Refusal | None:
    """Why it must not go ahead, or None when it is confirmed (or needs no confirmation)."""
    if not isinstance(decision, AcceptedElicitation):
        return Refusal("declined" if decision.action == "decline" else "cancelled")
    data = decision.data
    if isinstance(data, NameCheck):
        if data.result in ("matches", "not_needed", "page_approved"):
            return None
        return Refusal(_REFUSALS[data.result], data.given, data.cannot_ask)
    return None if data.confirm is True else Refusal("unticked")


def confirmed_by(
    decision: Decision | ChangeDecision,
) -> Literal["the user", "confirm_name", "a person on the confirmation page"] | None:
    """Who approved it (for the audit trail); None when nothing needed approving."""
    if isinstance(decision, AcceptedElicitation) and isinstance(decision.data, NameCheck):
        if decision.data.result == "page_approved":
            return "a person on the confirmation page"
        return None if decision.data.result == "not_needed" else "confirm_name"
    return "the user"


def ask_or_check(
    ctx: Context,
    target: Instance,
    confirm_name: str | None,
    question: str,
    form: type[BaseModel],
    statement: str | None = None,
) -> Elicit[Any] | NameCheck:
    """Ask the user where the client can; else check ``confirm_name`` (``--confirm auto``) or refuse.
    Under ``--confirm human`` a person approves on a confirmation page (which shows ``statement``, the
    change's full text), or the call is refused. A ``confirm_name`` naming another instance is
    refused outright."""
    runtime = runtime_of(ctx)
    if confirm_name is not None and confirm_name != target.name:
        # Refused outright, even when the client could ask the user: the caller named another instance.
        return NameCheck(result="mismatch", given=confirm_name)
    connection_cannot = without_back_channel(ctx)
    cannot_ask: CannotAsk = "connection" if connection_cannot else "client"
    if runtime.settings.confirm == "human":
        if can_open_page(ctx.client_capabilities) and not connection_cannot:
            subject = Subject(
                action="delete" if form is ConfirmDelete else "change",
                kind=_label(target),
                instance_id=target.id,
                name=target.name,
                question=question,
                statement=statement,
            )
            return NameCheck(result=_ON_THE_PAGE[page_verdict(subject)])
        return NameCheck(result="person_required", cannot_ask=cannot_ask)
    if can_ask_user(ctx.client_capabilities) and not connection_cannot:
        return Elicit(question, form)
    if confirm_name is None:
        return NameCheck(result="missing", cannot_ask=cannot_ask)
    return NameCheck(result="matches", given=confirm_name)


def _label(target: Instance) -> str:
    """How the page names the target's kind ("PostgreSQL database")."""
    return next((kind.label for kind in KINDS.values() if isinstance(target, kind.model)), "instance")


def resolvers(kind: AnyKind) -> tuple[Callable[..., Awaitable[Instance | None]], Callable[..., Awaitable[Any]]]:
    """``(current, confirmation)`` for the delete tool of ``kind``."""

    async def current(id: InstanceId, ctx: Context) -> Instance | None:
        """A fresh GET of the target: the confirmation is checked against what exists now."""
        runtime = runtime_of(ctx)
        client = runtime.client_or_tool_error(f"look up {kind.label} {id} before deleting it")
        try:
            return await client.get_instance(kind, id)
        except NotFoundError:
            # Already gone. Never "the other kind has this id: delete that": ids are numbered per kind.
            return None
        except ReduError as exc:
            raise ToolError(runtime.words.failure(f"look up {kind.label} {id} before deleting it", exc)) from None

    async def confirmation(
        ctx: Context, target: Annotated[Instance | None, Resolve(current)], confirm_name: ConfirmName = None
    ) -> Elicit[ConfirmDelete] | NameCheck:
        if target is None:
            return NameCheck(result="gone")
        question = runtime_of(ctx).words.confirmation_question(kind, target)
        return ask_or_check(ctx, target, confirm_name, question, ConfirmDelete)

    return current, confirmation


def single_use_request_state(server: MCPServer[Any], runtime: Runtime) -> None:
    """Make every sealed request state of ``tools/call`` good for one round: a middleware placed just
    outside the SDK's ``RequestStateBoundary``, where the state is still the sealed token the client
    echoes (unique per round: it carries a random nonce), so replaying it is refused as the SDK
    refuses a forged one."""
    used = SeenOnce(runtime.shared, "used-request-state", REQUEST_STATE_SECONDS)

    async def once(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        token = (ctx.params or {}).get("requestState") if ctx.method == "tools/call" else None
        if isinstance(token, str) and not await used.first_time(runtime.sealer.tag(token)):
            raise MCPError(
                code=INVALID_PARAMS, message="Invalid or expired requestState", data={"reason": "invalid_request_state"}
            )
        return await call_next(ctx)

    chain = server.middleware
    boundary = next((i for i, m in enumerate(chain) if isinstance(m, RequestStateBoundary)), 0)
    chain.insert(boundary, once)
