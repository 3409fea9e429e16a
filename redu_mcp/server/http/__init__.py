"""Streamable HTTP serving, and who may use it.

Three modes (see ``Settings.http_auth``):

* ``token`` (the default): every request carries ``Authorization: Bearer <token>``; the token is
  ``REDU_MCP_AUTH_TOKEN``, or on loopback one the ``redu-mcp`` command generates and prints
  (``redu_mcp.server.http._local_token``). Every client acts with the server's own API key.
* ``passthrough``: every request carries the caller's own Redu API key as its bearer token. The key
  is checked with ``GET /v1/me`` (answers cached briefly, refusals too; checks rate-limited per
  client address), a bad key gets HTTP 401, an API outage 503 with ``Retry-After``, and tools use
  that key for that request only.
* ``none``: the explicit opt-out, on a loopback address only.

What a request passes through, outermost first (each layer answers on its own when it refuses), and
the module of each:

1. ``RejectCredentialsInQuery`` (``_guards``): 400 for credentials in the URL (they end up in logs);
2. ``CheckHostAndOrigin`` (``_guards``): 421 for a foreign ``Host``, 403 for a foreign ``Origin``
   (DNS rebinding, browsers), before any credential is looked at;
   then ``ConfirmationPages`` (``_pages``) answers ``<path>/confirm/<token>``, the pages a person uses
   under ``--confirm human``: a browser carries no bearer token, the page's address is its capability
   (a server without HTTP serves them on a loopback listener of their own: ``_page_listener``);
3. ``Authenticate`` (``_auth``): 401 with an RFC 6750 challenge (``WWW-Authenticate: Bearer
   realm=...``), 429 when key checks are over their rate, 503 when the API cannot say; sets the
   principal. It asks a verifier (``_verifiers``: ``StaticTokenVerifier`` for ``token``,
   ``ReduKeyVerifier`` for ``passthrough``), whose answer is a verdict (``_verdicts``);
4. ``PerPrincipalSessions`` (``_sessions``): 429 when a principal has too many sessions open or opens
   them too fast (``redu_mcp.server.http._limits``);
5. the SDK's app (``AuthContextMiddleware`` makes ``get_access_token()`` work in tools), with its own
   global session cap (503) and idle timeout as a backstop.

Before all of them, ``Health`` (``_health``) answers ``/healthz`` and ``/readyz`` for orchestrators:
no credentials, no Host check (probes come by the pod's address), no upstream call, and nothing in
the answer but a status word. The layers' refusal bodies and rate-limited warnings are shared
(``_refusals``). ``build_http_app`` (``_app``) stacks the layers in this order; ``run_http``
(``_run``) serves the app from the command line, once start-up has checked Redis and printed how to
connect.

Several replicas: with ``--stateless`` no request depends on which replica answered the previous one
(no sessions: step 4 has nothing to count); with ``REDU_MCP_REDIS_URL`` the limits and the key cache
are kept in Redis (``redu_mcp.server.http._shared_limits``), and a request for a session another replica
serves is told so (404) instead of the SDK's bare "Session not found".

Nothing OAuth-shaped is advertised: there is no authorization server, so there is no protected
resource metadata document (the well-known paths answer 404) and the challenge names none.

The package imports its modules on first use (``__getattr__``): the face's settings use its
checks (``_settings``) before anything is served, and a stdio server never loads the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redu_mcp.server.http._app import advertised_url, build_http_app
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
    from redu_mcp.server.http._limits import Limits, LocalLimits
    from redu_mcp.server.http._local_token import TOKEN_FILE_NAME, load_or_create_token
    from redu_mcp.server.http._refusals import QuietWarnings
    from redu_mcp.server.http._run import client_setup, replica_notes, run_http
    from redu_mcp.server.http._sessions import SESSION_ELSEWHERE, PerPrincipalSessions
    from redu_mcp.server.http._settings import HttpLimits, check_exposure
    from redu_mcp.server.http._shared_limits import RedisLimits, SharedKeyVerdicts, SharedReservation
    from redu_mcp.server.http._verdicts import Accepted, BearerVerifier, Rejected, Throttled, Unavailable, Verdict
    from redu_mcp.server.http._verifiers import (
        MAX_REMEMBERED_KEYS,
        UNAVAILABLE_RETRY_AFTER,
        VERIFIED_KEY_TTL,
        ReduKeyVerifier,
        StaticTokenVerifier,
    )

#: Where each public name lives.
_HOMES = {
    "advertised_url": "_app",
    "build_http_app": "_app",
    "ANONYMOUS": "_auth",
    "PRINCIPAL": "_auth",
    "REALM": "_auth",
    "UNAUTHENTICATED_PREFIXES": "_auth",
    "Authenticate": "_auth",
    "CREDENTIAL_WORDS": "_guards",
    "LOOPBACK_ALLOWED_HOSTS": "_guards",
    "LOOPBACK_ALLOWED_ORIGINS": "_guards",
    "CheckHostAndOrigin": "_guards",
    "HostRules": "_guards",
    "RejectCredentialsInQuery": "_guards",
    "host_rules": "_guards",
    "HEALTH_PATHS": "_health",
    "Health": "_health",
    "Limits": "_limits",
    "LocalLimits": "_limits",
    "TOKEN_FILE_NAME": "_local_token",
    "load_or_create_token": "_local_token",
    "QuietWarnings": "_refusals",
    "client_setup": "_run",
    "replica_notes": "_run",
    "run_http": "_run",
    "SESSION_ELSEWHERE": "_sessions",
    "PerPrincipalSessions": "_sessions",
    "HttpLimits": "_settings",
    "check_exposure": "_settings",
    "RedisLimits": "_shared_limits",
    "SharedKeyVerdicts": "_shared_limits",
    "SharedReservation": "_shared_limits",
    "Accepted": "_verdicts",
    "BearerVerifier": "_verdicts",
    "Rejected": "_verdicts",
    "Throttled": "_verdicts",
    "Unavailable": "_verdicts",
    "Verdict": "_verdicts",
    "MAX_REMEMBERED_KEYS": "_verifiers",
    "UNAVAILABLE_RETRY_AFTER": "_verifiers",
    "VERIFIED_KEY_TTL": "_verifiers",
    "ReduKeyVerifier": "_verifiers",
    "StaticTokenVerifier": "_verifiers",
}

__all__ = [
    "ANONYMOUS",
    "CREDENTIAL_WORDS",
    "HEALTH_PATHS",
    "LOOPBACK_ALLOWED_HOSTS",
    "LOOPBACK_ALLOWED_ORIGINS",
    "MAX_REMEMBERED_KEYS",
    "PRINCIPAL",
    "REALM",
    "SESSION_ELSEWHERE",
    "TOKEN_FILE_NAME",
    "UNAUTHENTICATED_PREFIXES",
    "UNAVAILABLE_RETRY_AFTER",
    "VERIFIED_KEY_TTL",
    "Accepted",
    "Authenticate",
    "BearerVerifier",
    "CheckHostAndOrigin",
    "Health",
    "HostRules",
    "HttpLimits",
    "Limits",
    "LocalLimits",
    "PerPrincipalSessions",
    "QuietWarnings",
    "RedisLimits",
    "ReduKeyVerifier",
    "RejectCredentialsInQuery",
    "Rejected",
    "SharedKeyVerdicts",
    "SharedReservation",
    "StaticTokenVerifier",
    "Throttled",
    "Unavailable",
    "Verdict",
    "advertised_url",
    "build_http_app",
    "check_exposure",
    "client_setup",
    "host_rules",
    "load_or_create_token",
    "replica_notes",
    "run_http",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
