"""Streamable HTTP serving, and who may use it.

Three modes (see ``Settings.http_auth``):

* ``token`` (the default): every request carries ``Authorization: Bearer <token>``; the token is
  ``REDU_MCP_AUTH_TOKEN``, or on loopback one the ``redu-mcp`` command generates and prints
  (``redu_mcp.server.local_token``). Every client acts with the server's own API key.
* ``passthrough``: every request carries the caller's own Redu API key as its bearer token. The key
  is checked with ``GET /v1/me`` (answers cached briefly, refusals too; checks rate-limited per
  client address), a bad key gets HTTP 401, an API outage 503 with ``Retry-After``, and tools use
  that key for that request only.
* ``none``: the explicit opt-out, on a loopback address only.

What a request passes through, outermost first (each layer answers on its own when it refuses):

1. ``RejectCredentialsInQuery``: 400 for credentials in the URL (they end up in logs);
2. ``CheckHostAndOrigin``: 421 for a foreign ``Host``, 403 for a foreign ``Origin`` (DNS rebinding,
   browsers), before any credential is looked at;
3. ``Authenticate``: 401 with an RFC 6750 challenge (``WWW-Authenticate: Bearer realm=...``), 429
   when key checks are over their rate, 503 when the API cannot say; sets the principal;
4. ``PerPrincipalSessions``: 429 when a principal has too many sessions open or opens them too fast
   (``redu_mcp.server.limits``);
5. the SDK's app (``AuthContextMiddleware`` makes ``get_access_token()`` work in tools), with its own
   global session cap (503) and idle timeout as a backstop.

Before all of them, ``Health`` answers ``/healthz`` and ``/readyz`` for orchestrators: no credentials,
no Host check (probes come by the pod's address), no upstream call, and nothing in the answer but a
status word.

Several replicas: with ``--stateless`` no request depends on which replica answered the previous one
(no sessions: step 4 has nothing to count); with ``REDU_MCP_REDIS_URL`` the limits and the key cache
are kept in Redis (``redu_mcp.server.shared_limits``), and a request for a session another replica
serves is told so (404) instead of the SDK's bare "Session not found".

Nothing OAuth-shaped is advertised: there is no authorization server, so there is no protected
resource metadata document (the well-known paths answer 404) and the challenge names none.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
from typing import Any

import anyio
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from redu_mcp.server.assembly import build_server
from redu_mcp.server.http._guards import (
    CREDENTIAL_WORDS,
    LOOPBACK_ALLOWED_HOSTS,
    LOOPBACK_ALLOWED_ORIGINS,
    CheckHostAndOrigin,
    HostRules,
    RejectCredentialsInQuery,
    host_rules,
)
from redu_mcp.server.http._health import HEALTH_PATHS, Health
from redu_mcp.server.http._refusals import QuietWarnings, refusal_body
from redu_mcp.server.http._verdicts import Accepted, BearerVerifier, Rejected, Throttled, Unavailable, Verdict
from redu_mcp.server.http._verifiers import (
    MAX_REMEMBERED_KEYS,
    MAX_VERIFIED_KEYS,
    UNAVAILABLE_RETRY_AFTER,
    VERIFIED_KEY_TTL,
    ReduKeyVerifier,
    StaticTokenVerifier,
)
from redu_mcp.server.limits import Limits, LocalLimits, Refusal, Reservation
from redu_mcp.server.runtime import Runtime
from redu_mcp.server.settings import WILDCARD_HOSTS, Settings, well_formed_bearer
from redu_mcp.server.shared_limits import RedisLimits, SharedKeyVerdicts

__all__ = [
    "ANONYMOUS",
    "CREDENTIAL_WORDS",
    "HEALTH_PATHS",
    "LOOPBACK_ALLOWED_HOSTS",
    "LOOPBACK_ALLOWED_ORIGINS",
    "MAX_REMEMBERED_KEYS",
    "MAX_VERIFIED_KEYS",
    "PRINCIPAL",
    "REALM",
    "SESSION_ELSEWHERE",
    "UNAUTHENTICATED_PREFIXES",
    "UNAVAILABLE_RETRY_AFTER",
    "VERIFIED_KEY_TTL",
    "Accepted",
    "Authenticate",
    "BearerVerifier",
    "CheckHostAndOrigin",
    "Health",
    "HostRules",
    "PerPrincipalSessions",
    "QuietWarnings",
    "ReduKeyVerifier",
    "RejectCredentialsInQuery",
    "Rejected",
    "StaticTokenVerifier",
    "Throttled",
    "Unavailable",
    "Verdict",
    "advertised_url",
    "build_http_app",
    "client_setup",
    "host_rules",
    "replica_notes",
    "resource_url",
    "run_http",
]

log = logging.getLogger(__name__)

REALM = "redu-mcp"
#: The answer to a request for a session that another replica serves (HTTP 404, like an unknown session).
SESSION_ELSEWHERE = (
    "Session not found on this replica: it was opened on another replica of this server, and the load balancer "
    "sent this request elsewhere. Start a new session; the operator should route requests by the Mcp-Session-Id "
    "header (sticky sessions) or run every replica with --stateless"
)
#: Paths served without authentication: only the well-known discovery paths, which answer 404 (no
#: OAuth metadata exists), so a client probing for an authorization server learns there is none.
UNAUTHENTICATED_PREFIXES = ("/.well-known/", *HEALTH_PATHS)
PRINCIPAL = "redu_mcp.principal"  # the ASGI scope key carrying who the request authenticated as
ANONYMOUS = "anonymous"  # the principal of every request under --auth none


# --- ASGI layers -------------------------------------------------------------------------------------------------


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


# --- the app --------------------------------------------------------------------------------------------------


def advertised_url(settings: Settings) -> str:
    """The MCP endpoint's URL as clients should use it: ``--public-url``, else the bind address
    (for a wildcard bind, this machine's name: never a loopback address)."""
    if settings.public_url:
        return settings.public_url
    host = socket.gethostname() if settings.host in WILDCARD_HOSTS else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}{settings.path}"


def resource_url(settings: Settings) -> str:
    """Kept for callers of the old name: the advertised URL."""
    return advertised_url(settings)


def build_http_app(settings: Settings, *, limits: Limits | None = None, **runtime_options: Any) -> tuple[Any, Runtime]:
    """The ASGI app serving MCP over streamable HTTP with the configured auth and limits, and its runtime.

    ``limits`` replaces the in-process books (e.g. shared ones); ``runtime_options`` (``sandbox=``,
    ``client=``) replace the upstream, for tests."""
    settings.check_http_exposure(serving_http=True)  # also for apps built outside the CLI
    runtime = Runtime(settings, **runtime_options)
    resource = advertised_url(settings)
    numbers = settings.http_limits
    shared = runtime.shared
    if limits is None:
        limits = RedisLimits(shared, numbers, runtime.replica) if shared is not None else LocalLimits(numbers)
    server = build_server(settings, runtime=runtime)
    rules = host_rules(settings)
    app: Any = server.streamable_http_app(
        streamable_http_path=settings.path,
        host=settings.host,
        transport_security=rules.for_sdk(),
        max_sessions=numbers.max_sessions,
        session_idle_timeout=numbers.session_idle_seconds,
        stateless_http=settings.stateless,
    )
    app = AuthContextMiddleware(app)
    if not settings.stateless:  # stateless: no request opens a session, there is nothing to count
        app = PerPrincipalSessions(app, limits, settings.path)
    verifier: BearerVerifier | None = None
    if settings.http_auth == "token":
        verifier = StaticTokenVerifier(settings.auth_token or "", resource)
    elif settings.http_auth == "passthrough":
        verdicts = SharedKeyVerdicts(shared) if shared is not None else None
        verifier = ReduKeyVerifier(
            runtime, limits, resource, rejected_ttl=numbers.rejected_key_seconds, shared=verdicts
        )
    if verifier is not None:
        app = Authenticate(app, verifier)
    return Health(RejectCredentialsInQuery(CheckHostAndOrigin(app, rules)), runtime), runtime


def client_setup(settings: Settings) -> str:
    """What the start-up banner says: the URL, and a client configuration that works with it.

    Only a token this server generated is shown (once, like a notebook server's): an operator's
    ``REDU_MCP_AUTH_TOKEN`` is referred to by name, a pass-through key by a placeholder."""
    url = advertised_url(settings)
    lines = [f"redu-mcp: serving MCP over streamable HTTP at {url}"]
    header: str | None
    if settings.http_auth == "token" and settings.auth_token_file is not None:
        header = f"Bearer {settings.auth_token}"
        lines.append(f"  auth: a bearer token generated for this user, kept in {settings.auth_token_file} (mode 0600)")
    elif settings.http_auth == "token":
        header = "Bearer ${REDU_MCP_AUTH_TOKEN}"  # the shell expands it; so do JSON configs that support ${VAR}
        lines.append("  auth: the bearer token in REDU_MCP_AUTH_TOKEN")
    elif settings.http_auth == "passthrough":
        header = "Bearer ${REDU_API_KEY}"
        lines.append("  auth: each client sends its own Redu API key as its bearer token")
    else:
        header = None
        lines.append("  auth: NONE (--auth none): every local user and program can use it")
    name = "redu"
    add = f"claude mcp add --transport http {name} {url}"
    entry: dict[str, Any] = {"type": "http", "url": url}
    if header is not None:
        add += f' --header "Authorization: {header}"'
        entry["headers"] = {"Authorization": header}
    lines += [
        "  Claude Code:",
        f"    {add}",
        "  mcpServers entry (JSON client configuration):",
        "    " + json.dumps({"mcpServers": {name: entry}}),
    ]
    return "\n".join(lines) + "\n"


def replica_notes(settings: Settings) -> list[tuple[int, str]]:
    """What the start-up log says about running this server as one of several replicas."""
    from redu_mcp.sharing import describe_url

    notes: list[tuple[int, str]] = []
    several = settings.stateless or settings.redis_url is not None
    if not settings.state_keys:
        notes.append(
            (
                logging.WARNING if several else logging.INFO,
                "REDU_MCP_STATE_KEY is not set: request state (a delete's confirmation) is sealed with a key of "
                "this process only, so only one replica is supported (a confirmation answered through another "
                "replica, or after a restart, is refused)",
            )
        )
    if settings.redis_url is not None:
        notes.append(
            (
                logging.INFO,
                f"sharing state with the other replicas through Redis at {describe_url(settings.redis_url)}: one "
                "poll per instance per interval, the key cache, session and key-check limits",
            )
        )
    if settings.stateless:
        notes.append(
            (
                logging.INFO,
                "stateless HTTP (--stateless): no sessions; 2025-11-25 clients cannot be asked to confirm a delete "
                "mid-call (they confirm with confirm_name) and cannot cancel a call",
            )
        )
    elif settings.state_keys or settings.redis_url is not None:
        notes.append(
            (
                logging.INFO,
                "sessions are kept per replica: behind a round-robin balancer, 2025-11-25 clients need sticky "
                "routing on the Mcp-Session-Id header, or run every replica with --stateless",
            )
        )
    return notes


async def _check_redis(runtime: Runtime) -> None:
    """Say at start-up whether Redis answers (a wrong address or password shows at once, not at the
    first request); the server starts either way: it falls back to its own state until Redis answers."""
    shared = runtime.shared
    assert shared is not None
    try:
        if await shared.ping():
            log.info("Redis at %s answers", shared.where)
    finally:
        await shared.aclose()  # its connections belong to this event loop, not the server's


def run_http(settings: Settings) -> None:
    import uvicorn

    app, runtime = build_http_app(settings)
    if runtime.shared is not None:
        runtime.shared.prepare()  # its import costs a fraction of a second: now, not in the first request
        anyio.run(_check_redis, runtime)
    if settings.http_auth == "none":
        log.warning(
            "serving HTTP on %s WITHOUT authentication (--auth none): every user and program on this machine "
            "can use this server, with its API key at access '%s'",
            settings.host,
            settings.access,
        )
    sys.stderr.write(client_setup(settings))  # the one place a generated token is shown
    sys.stderr.flush()
    for level, note in replica_notes(settings):
        log.log(level, note)
    if runtime.shared is not None:
        log.info("this replica's id in the shared state (leases, sessions): %s", runtime.replica)
    log.info("serving MCP on %s (auth: %s)", advertised_url(settings), settings.http_auth)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", lifespan="on")
