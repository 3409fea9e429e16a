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

from redu_mcp.server.assembly import build_server
from redu_mcp.server.http._auth import ANONYMOUS, PRINCIPAL, REALM, UNAUTHENTICATED_PREFIXES, Authenticate
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
from redu_mcp.server.http._refusals import QuietWarnings
from redu_mcp.server.http._sessions import SESSION_ELSEWHERE, PerPrincipalSessions
from redu_mcp.server.http._verdicts import Accepted, BearerVerifier, Rejected, Throttled, Unavailable, Verdict
from redu_mcp.server.http._verifiers import (
    MAX_REMEMBERED_KEYS,
    MAX_VERIFIED_KEYS,
    UNAVAILABLE_RETRY_AFTER,
    VERIFIED_KEY_TTL,
    ReduKeyVerifier,
    StaticTokenVerifier,
)
from redu_mcp.server.limits import Limits, LocalLimits
from redu_mcp.server.runtime import Runtime
from redu_mcp.server.settings import WILDCARD_HOSTS, Settings
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
