"""Each principal's sessions within its limits, counted at the HTTP boundary.

The SDK has no session hooks, so which requests open and close a session is learnt here from the
traffic, and the books are kept by ``redu_mcp.server.http._limits`` (in this process, or in Redis when
replicas share state). With shared books a request for a session another replica serves is told so
(404), instead of the SDK's bare "Session not found".
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import Response

from redu_mcp.server.http._auth import ANONYMOUS, PRINCIPAL
from redu_mcp.server.http._limits import Limits, Refusal, Reservation
from redu_mcp.server.http._refusals import QuietWarnings, refusal_body

#: The answer to a request for a session that another replica serves (HTTP 404, like an unknown session).
SESSION_ELSEWHERE = (
    "Session not found on this replica: it was opened on another replica of this server, and the load balancer "
    "sent this request elsewhere. Start a new session; the operator should route requests by the Mcp-Session-Id "
    "header (sticky sessions) or run every replica with --stateless"
)


class PerPrincipalSessions:
    """ASGI middleware: each principal's sessions within ``Limits`` (count, rate), learnt from the traffic.

    Only handshake-era requests can open a session: one without ``Mcp-Session-Id`` and without a
    2026-era ``Mcp-Protocol-Version``. Its slot is reserved before the SDK sees it and kept if the
    answer carries a session id; a 2xx DELETE or a 404 from the session's owner closes it."""

    def __init__(self, app: Any, limits: Limits, path: str) -> None:
        self.app = app
        self.limits = limits
        self.path = path
        self._warnings = QuietWarnings()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await self.app(scope, receive, send)  # the 2026-07-28 era has no sessions
            return
        principal = str(scope.get(PRINCIPAL, ANONYMOUS))
        session_id = headers.get("mcp-session-id")
        if session_id is None:
            await self._opening(principal, scope, receive, send)
        else:
            await self._within(principal, session_id, scope, receive, send)

    async def _opening(self, principal: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        reserved = await self.limits.reserve_session(principal)
        if isinstance(reserved, Refusal):
            self._warnings.warn(
                principal,
                "refused new sessions for principal %r: at its %s limit (%d)",
                principal,
                reserved.reason,
                reserved.limit,
            )
            await self._refused(reserved)(scope, receive, send)
            return
        reservation: Reservation | None = reserved
        opened: str | None = None

        async def watch(message: dict[str, Any]) -> None:
            nonlocal reservation, opened
            if message["type"] == "http.response.start" and reservation is not None:
                if message["status"] < 400:
                    opened = Headers(raw=message.get("headers", [])).get("mcp-session-id")
                held, reservation = reservation, None
                await self.limits.session_opened(held, opened)
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            with anyio.CancelScope(shield=True):
                if reservation is not None:  # no answer at all: nothing was opened
                    await self.limits.session_opened(reservation, None)
                elif opened is not None:
                    await self.limits.request_ended(principal, opened)

    async def _within(self, principal: str, session_id: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await self.limits.session_elsewhere(principal, session_id):
            self._warnings.warn(
                "elsewhere",
                "404 for a session another replica serves: the load balancer must route by Mcp-Session-Id "
                "(sticky sessions), or run the replicas with --stateless",
            )
            await refusal_body(404, SESSION_ELSEWHERE)(scope, receive, send)
            return
        status: int | None = None

        async def watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.limits.request_started(principal, session_id)
        try:
            await self.app(scope, receive, watch)
        finally:
            with anyio.CancelScope(shield=True):
                await self.limits.request_ended(principal, session_id)
                deleted = scope["method"] == "DELETE" and status is not None and 200 <= status < 300
                if deleted or status == 404:
                    await self.limits.session_closed(principal, session_id)

    @staticmethod
    def _refused(refusal: Refusal) -> Response:
        if refusal.reason == "sessions":
            message = (
                f"Too many open sessions for this credential (at most {refusal.limit}): end unused ones "
                "(HTTP DELETE with their Mcp-Session-Id) or wait for them to expire"
            )
        else:
            message = f"Too many new sessions for this credential (at most {refusal.limit} a minute): retry later"
        return refusal_body(429, message, refusal.retry_after)
