"""``--confirm human`` with a client that declares URL-mode elicitation: a person approves on a
confirmation page, and only the page's POST counts, never the client's answer.

How a destructive call goes (deletes and every destructive data change: they all ask through
``confirmation.ask_or_check``, which calls ``page_verdict`` here):

1. The call runs; its confirmation resolver finds no page outcome for it and raises ``PageNeeded``
   with the ``Subject`` (what would be destroyed, for whom) before the tool's body does anything.
2. ``page_rounds``, the innermost middleware (inside the SDK's request-state boundary), opens an
   approval (``Approvals``) and asks the client to open its page, through a URL elicitation:
   * 2026-07-28: the call answers ``input_required`` with the URL request; the request state, sealed
     by the SDK (encrypted, bound to this tool, its arguments and the principal) and good for one
     round (``single_use_request_state``), carries the page's token;
   * 2025-11-25: an ``elicitation/create`` in URL mode, mid-call.
   (The SDK's ``Resolve``/``Elicit`` ask in form mode only: a URL request is made here, by hand.)
3. Once the client accepts, it waits for the person's POST on the page, reporting progress, until
   the page expires; uses the approval once (only the principal who opened it can); and runs the
   call again with the outcome in a context variable, which ``page_verdict`` turns into a go-ahead
   only when the approval's subject is exactly this call's. A client that accepts without the page
   being used gets "not approved on the page"; a decline or cancel closes the page.
"""

from __future__ import annotations

import math
import secrets
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import ClientCapabilities, ElicitRequest, ElicitRequestURLParams, InputRequiredResult
from mcp_types import INTERNAL_ERROR
from mcp_types.version import is_version_at_least

from redu_mcp.server.approvals import Approval, ApprovalsUnavailable, Subject

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from redu_mcp.server.runtime import Runtime

#: The key of the page's URL request in an ``input_required`` result.
PAGE_REQUEST: Final = "redu-mcp/confirmation-page"
_STATE_PREFIX: Final = "redu-mcp/page:"
_FIRST_WITH_INPUT_REQUIRED: Final = "2026-07-28"
POLL_SECONDS: Final = 0.25  # how often a waiting call looks whether the page was approved
PROGRESS_SECONDS: Final = 5.0

Verdict = Literal["approved", "unused", "declined", "cancelled", "unavailable"]


class PageNeeded(MCPError):
    """A person must approve ``subject`` on a page first: raised by the confirmation resolver, caught
    by ``page_rounds`` (an ``MCPError``, so the SDK passes it through untouched)."""

    def __init__(self, subject: Subject) -> None:
        super().__init__(code=INTERNAL_ERROR, message="a person must approve this on a confirmation page first")
        self.subject = subject


@dataclass(frozen=True)
class _Outcome:
    verdict: Verdict
    approval: Approval | None = None  # the approval used, when approved


_OUTCOME: ContextVar[_Outcome | None] = ContextVar("redu_mcp_page_outcome", default=None)


def can_open_page(capabilities: ClientCapabilities | None) -> bool:
    """Does the client take URL-mode elicitations (it shows the user an address to open)?"""
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and elicitation.url is not None


def principal_of(runtime: Runtime) -> str:
    """Who is asking, as a keyed tag: the audit principal and, under pass-through, whose key."""
    return runtime.sealer.tag(f"{runtime.principal()}\0{runtime.caller_identity()}")


def page_verdict(subject: Subject) -> Verdict:
    """What the page said about this call. Raises ``PageNeeded`` while nobody was asked yet."""
    outcome = _OUTCOME.get()
    if outcome is None:
        raise PageNeeded(subject)
    if outcome.verdict == "approved":
        # Approved for exactly this: the same instance (by id and name) and the same statement.
        return "approved" if outcome.approval is not None and outcome.approval.subject == subject else "unused"
    return outcome.verdict


def page_rounds(server: MCPServer[Any], runtime: Runtime) -> None:
    """Install the middleware that asks through the page (see the module's docstring), innermost."""

    async def rounds(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        params = dict(ctx.params or {})
        state = params.get("requestState")
        if isinstance(state, str) and state.startswith(_STATE_PREFIX):  # 2026-07-28: the client answered
            answer = (params.get("inputResponses") or {}).get(PAGE_REQUEST)
            action = answer.get("action") if isinstance(answer, dict) else None
            outcome = await _settle(ctx, runtime, state.removeprefix(_STATE_PREFIX), action)
            fresh = {key: value for key, value in params.items() if key not in ("requestState", "inputResponses")}
            return await _again(outcome, call_next, replace(ctx, params=fresh))
        try:
            return await call_next(ctx)
        except PageNeeded as needed:
            return await _ask(ctx, call_next, runtime, needed.subject)

    server.middleware.append(rounds)


async def _ask(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext, runtime: Runtime, subject: Subject
) -> HandlerResult:
    approvals = runtime.approvals
    try:
        approval = await approvals.open(subject, principal_of(runtime))
        url = await approvals.page_url(approval)
    except ApprovalsUnavailable:
        return await _again(_Outcome("unavailable"), call_next, ctx)
    message = runtime.words.page_prompt(subject.question, approvals.lifetime)
    if is_version_at_least(ctx.protocol_version, _FIRST_WITH_INPUT_REQUIRED):
        request = ElicitRequest(params=ElicitRequestURLParams(message=message, url=url))
        return InputRequiredResult(input_requests={PAGE_REQUEST: request}, request_state=_STATE_PREFIX + approval.token)
    elicitation = secrets.token_urlsafe(16)
    try:
        answer = await ctx.session.elicit_url(message, url, elicitation, related_request_id=ctx.request_id)
        action: str | None = answer.action
    except MCPError:  # the client could not show it
        action = None
    outcome = await _settle(ctx, runtime, approval.token, action)
    if outcome.verdict == "approved":
        await ctx.session.send_elicit_complete(elicitation, related_request_id=ctx.request_id)
    return await _again(outcome, call_next, ctx)


async def _settle(ctx: ServerRequestContext[Any, Any], runtime: Runtime, token: str, action: str | None) -> _Outcome:
    """The page's outcome once the client answered ``action``: wait for the person's POST after an accept."""
    approvals = runtime.approvals
    try:
        if action != "accept":
            await approvals.close(token)
            return _Outcome("declined" if action == "decline" else "cancelled")
        reported = math.inf  # seconds left at the last progress report
        while (found := await approvals.find(token)) is not None:
            approval, state = found
            if state == "approved":
                used = await approvals.use(token, principal_of(runtime))
                return _Outcome("approved", used) if used is not None else _Outcome("unused")
            if state == "used":
                break
            left = approval.expires_at - approvals.clock()
            if reported - left >= PROGRESS_SECONDS:
                reported = left
                waited = approvals.lifetime - left
                await ctx.session.report_progress(waited, approvals.lifetime, runtime.words.page_waiting(left))
            await anyio.sleep(POLL_SECONDS)
    except ApprovalsUnavailable:
        return _Outcome("unavailable")
    return _Outcome("unused")


async def _again(outcome: _Outcome, call_next: CallNext, ctx: ServerRequestContext[Any, Any]) -> HandlerResult:
    """Run the call with the page's outcome: its confirmation resolver reads it (``page_verdict``)."""
    token = _OUTCOME.set(outcome)
    try:
        return await call_next(ctx)
    finally:
        _OUTCOME.reset(token)
