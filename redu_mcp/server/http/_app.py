"""The app as it is served: the SDK's streamable HTTP app inside the layers of this package.

``build_http_app`` stacks the layers, innermost first, and picks the verifier the auth mode calls
for; it is the one place their order is decided. Tests and benches build their servers with it, so
they run exactly the stack ``redu-mcp`` serves.
"""

from __future__ import annotations

import socket
from typing import Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware

from redu_mcp.server.assembly import build_server, runtime_for
from redu_mcp.server.http._auth import Authenticate
from redu_mcp.server.http._guards import CheckHostAndOrigin, RejectCredentialsInQuery, host_rules
from redu_mcp.server.http._health import Health
from redu_mcp.server.http._limits import Limits, LocalLimits
from redu_mcp.server.http._pages import ConfirmationPages
from redu_mcp.server.http._sessions import PerPrincipalSessions
from redu_mcp.server.http._settings import WILDCARD_HOSTS
from redu_mcp.server.http._shared_limits import RedisLimits, SharedKeyVerdicts
from redu_mcp.server.http._verdicts import BearerVerifier
from redu_mcp.server.http._verifiers import VERIFIED_KEY_TTL, ReduKeyVerifier, StaticTokenVerifier
from redu_mcp.server.runtime import Runtime
from redu_mcp.server.settings import Settings


def advertised_url(settings: Settings) -> str:
    """The MCP endpoint's URL as clients should use it: ``--public-url``, else the bind address
    (for a wildcard bind, this machine's name: never a loopback address)."""
    if settings.public_url:
        return settings.public_url
    host = socket.gethostname() if settings.host in WILDCARD_HOSTS else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}{settings.path}"


def build_http_app(settings: Settings, *, limits: Limits | None = None, **runtime_options: Any) -> tuple[Any, Runtime]:
    """The ASGI app serving MCP over streamable HTTP with the configured auth and limits, and its runtime.

    ``limits`` replaces the in-process books (e.g. shared ones); ``runtime_options`` (``client=``,
    ``on_close=``) go to the ``Runtime``, as for ``build_server``."""
    settings.check_http_exposure(serving_http=True)  # also for apps built outside the CLI
    runtime = runtime_for(settings, **runtime_options)
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
        verdicts = None
        if shared is not None:  # trusted no longer than this replica would trust its own check
            verdicts = SharedKeyVerdicts(shared, VERIFIED_KEY_TTL, numbers.rejected_key_seconds)
        verifier = ReduKeyVerifier(
            runtime, limits, resource, rejected_ttl=numbers.rejected_key_seconds, shared=verdicts
        )
    if verifier is not None:
        app = Authenticate(app, verifier)
    # Confirmation pages (--confirm human) beside the MCP endpoint: a person's browser carries no token.
    pages = settings.path.rstrip("/") + "/confirm/"
    runtime.approvals.served_at = resource.rstrip("/") + "/confirm/"
    app = ConfirmationPages(runtime.approvals, pages, app)
    return Health(RejectCredentialsInQuery(CheckHostAndOrigin(app, rules)), runtime), runtime
