"""Bearer authentication at the HTTP boundary, and the refusals that say what to do.

Our own layer rather than the SDK's bearer middleware, whose verifier can only say yes or no: a
pass-through key check can also be over its rate (429) or left unanswered by the API (503), a
request without credentials gets a challenge without an error (RFC 6750 §3), and with no OAuth
authorization server there is no resource metadata for the challenge to name. An accepted request
carries its principal in the ASGI scope (``PRINCIPAL``) for the layers below.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from redu_mcp.server.http._health import HEALTH_PATHS
from redu_mcp.server.http._refusals import refusal_body
from redu_mcp.server.http._settings import well_formed_bearer
from redu_mcp.server.http._verdicts import Accepted, BearerVerifier, Rejected, Throttled, Unavailable, Verdict

REALM = "redu-mcp"
#: Paths served without authentication: the well-known discovery paths, which answer 404 (no
#: OAuth metadata exists), so a client probing for an authorization server learns there is none;
#: and the health checks, which ``Health`` answers before this layer is reached.
UNAUTHENTICATED_PREFIXES = ("/.well-known/", *HEALTH_PATHS)
PRINCIPAL = "redu_mcp.principal"  # the ASGI scope key carrying who the request authenticated as
ANONYMOUS = "anonymous"  # the principal of every request under --auth none


def _client_address(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _challenge(error: str | None = None, description: str | None = None) -> str:
    """An RFC 6750 §3 challenge: no ``error`` when no credentials came, ``invalid_token`` otherwise."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    return "Bearer " + ", ".join(parts)


class Authenticate:
    """ASGI middleware: a bearer token the verifier accepts, or a refusal that says what to do.

    * no ``Authorization: Bearer`` (or another scheme): 401, challenge without an error;
    * a malformed token (not printable ASCII, blanks, over-long): 401 ``invalid_token``, unread;
    * a refused token: 401 ``invalid_token``;
    * too many key checks from this address: 429 with ``Retry-After``;
    * the API could not say: 503 with ``Retry-After`` (the key may be fine: try again).
    """

    def __init__(self, app: Any, verifier: BearerVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNAUTHENTICATED_PREFIXES):
            await self.app(scope, receive, send)
            return
        verdict = await self._verdict(scope)
        if isinstance(verdict, Accepted):
            scope["user"] = AuthenticatedUser(verdict.access)
            scope["auth"] = AuthCredentials(verdict.access.scopes)
            scope[PRINCIPAL] = verdict.principal
            await self.app(scope, receive, send)
            return
        await self._refusal(verdict)(scope, receive, send)

    async def _verdict(self, scope: dict[str, Any]) -> Verdict | None:
        """None: no bearer credentials at all."""
        authorization = Headers(scope=scope).get("authorization")  # latin-1: any byte is some character
        if authorization is None or authorization[:7].lower() != "bearer ":
            return None
        token = authorization[7:]
        if not well_formed_bearer(token):
            return Rejected()
        return await self.verifier.check(token, _client_address(scope))

    @staticmethod
    def _refusal(verdict: Verdict | None) -> Response:
        if verdict is None:
            body = {"error": "unauthorized", "error_description": "Send Authorization: Bearer <token>"}
            return JSONResponse(body, status_code=401, headers={"www-authenticate": _challenge()})
        if isinstance(verdict, Throttled):
            return refusal_body(
                429,
                f"Too many credential checks from this address (at most {verdict.refusal.limit} a minute): "
                "retry later with a valid token",
                verdict.refusal.retry_after,
            )
        if isinstance(verdict, Unavailable):
            return refusal_body(
                503, "The Redu API could not verify this key right now: retry later", verdict.retry_after
            )
        description = "The bearer token is not valid"
        body = {"error": "invalid_token", "error_description": description}
        return JSONResponse(
            body, status_code=401, headers={"www-authenticate": _challenge("invalid_token", description)}
        )
