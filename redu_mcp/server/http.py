"""Streamable HTTP serving, and who may use it.

Three modes (see ``Settings.http_auth``):

* ``none``: only on a loopback address, with the SDK's DNS-rebinding protection.
* ``token``: every request must carry ``Authorization: Bearer $REDU_MCP_AUTH_TOKEN``.
* ``passthrough``: every request carries the caller's own Redu API key as its bearer token. The key
  is checked with ``GET /v1/me`` (cached briefly), so a bad key gets HTTP 401 from the MCP endpoint,
  and tools use that key for that request only.

Keys in query strings are refused with 400 in every mode: URLs end up in logs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl
from starlette.responses import JSONResponse

from redu_mcp.api import AuthenticationError, PermissionDeniedError, ReduError
from redu_mcp.server.assembly import build_server
from redu_mcp.server.runtime import Runtime
from redu_mcp.server.settings import LOOPBACK_HOSTS, Settings

log = logging.getLogger(__name__)

#: Query parameter names that look like credentials (``api_key``, ``X-Api-Key``, ``access_token``,
#: ``authorization``, ``redu_key``...): a request carrying one is refused. The MCP endpoint takes no
#: query parameters at all, so refusing broadly costs nothing.
CREDENTIAL_WORDS = ("key", "token", "auth", "bearer", "secret", "passw", "credential")
VERIFIED_KEY_TTL = 60.0  # seconds a key verified with GET /v1/me is trusted without asking again
MAX_VERIFIED_KEYS = 10_000  # verified keys remembered at once


class StaticTokenVerifier(TokenVerifier):
    """Accepts exactly the operator's token (compared in constant time)."""

    def __init__(self, token: str, resource: str) -> None:
        self._token = token.encode()
        self._resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="operator", scopes=[], resource=self._resource)
        return None


class ReduKeyVerifier(TokenVerifier):
    """Accepts a bearer token that is a working Redu API key, checked with ``GET /v1/me``."""

    def __init__(self, runtime: Runtime, resource: str, ttl: float = VERIFIED_KEY_TTL) -> None:
        self._runtime = runtime
        self._resource = resource
        self._ttl = ttl
        self._verified: dict[str, tuple[float, str]] = {}  # sha256(key) -> (expiry, user id)

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._runtime.clock()
        if len(self._verified) > MAX_VERIFIED_KEYS:  # expired entries go first; the cache stays bounded
            self._verified = {k: v for k, v in self._verified.items() if v[0] >= now}
            if len(self._verified) > MAX_VERIFIED_KEYS:
                self._verified.clear()
        cached = self._verified.get(digest)
        if cached is None or cached[0] < now:
            try:
                user = await self._runtime.base_client().with_api_key(token).me()
            except (AuthenticationError, PermissionDeniedError):
                self._verified.pop(digest, None)
                log.info("refused a request: its Redu API key was rejected by GET /v1/me")
                return None
            except ReduError as exc:
                log.warning("could not verify a Redu API key (%s); refusing the request", type(exc).__name__)
                return None
            cached = (now + self._ttl, str(user.id))
            self._verified[digest] = cached
        return AccessToken(token=token, client_id=cached[1], scopes=[], resource=self._resource)


class RejectCredentialsInQuery:
    """ASGI middleware: 400 for any request whose query string carries something like a key."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            from urllib.parse import parse_qsl

            names = {
                name.lower() for name, _ in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            }
            if any(word in name for name in names for word in CREDENTIAL_WORDS):
                response = JSONResponse(
                    {"error": "credentials must be sent in the Authorization header, never in the URL"},
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def resource_url(settings: Settings) -> str:
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}{settings.path}"


def build_http_app(settings: Settings, **runtime_options: Any) -> tuple[Any, Runtime]:
    """The ASGI app serving MCP over streamable HTTP with the configured auth, and its runtime.

    ``runtime_options`` (``sandbox=``, ``client=``) replace the upstream, for tests."""
    settings.check_http_exposure(serving_http=True)  # also for apps built outside the CLI
    runtime = Runtime(settings, **runtime_options)
    resource = resource_url(settings)
    auth_options: dict[str, Any] = {}
    if settings.http_auth != "none":
        auth_options["auth"] = AuthSettings(
            issuer_url=AnyHttpUrl(resource),
            resource_server_url=AnyHttpUrl(resource),
            validate_token_resource=True,
        )
    if settings.http_auth == "token":
        auth_options["token_verifier"] = StaticTokenVerifier(settings.auth_token or "", resource)
    elif settings.http_auth == "passthrough":
        auth_options["token_verifier"] = ReduKeyVerifier(runtime, resource)
    server = build_server(settings, runtime=runtime, **auth_options)

    transport_security = None
    if settings.host not in LOOPBACK_HOSTS:
        from mcp.server.transport_security import TransportSecuritySettings

        # Authenticated and reachable by name: the Host header is not a trust boundary here.
        transport_security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(
        streamable_http_path=settings.path,
        host=settings.host,
        transport_security=transport_security,
    )
    return RejectCredentialsInQuery(app), runtime


def run_http(settings: Settings) -> None:
    import uvicorn

    app, _ = build_http_app(settings)
    log.info(
        "serving MCP on http://%s:%d%s (auth: %s)", settings.host, settings.port, settings.path, settings.http_auth
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", lifespan="on")
