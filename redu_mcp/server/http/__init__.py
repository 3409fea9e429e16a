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

What a request passes through, outermost first (each layer answers on its own when it refuses), and
the module of each:

1. ``RejectCredentialsInQuery`` (``_guards``): 400 for credentials in the URL (they end up in logs);
2. ``CheckHostAndOrigin`` (``_guards``): 421 for a foreign ``Host``, 403 for a foreign ``Origin``
   (DNS rebinding, browsers), before any credential is looked at;
3. ``Authenticate`` (``_auth``): 401 with an RFC 6750 challenge (``WWW-Authenticate: Bearer
   realm=...``), 429 when key checks are over their rate, 503 when the API cannot say; sets the
   principal. It asks a verifier (``_verifiers``: ``StaticTokenVerifier`` for ``token``,
   ``ReduKeyVerifier`` for ``passthrough``), whose answer is a verdict (``_verdicts``);
4. ``PerPrincipalSessions`` (``_sessions``): 429 when a principal has too many sessions open or opens
   them too fast (``redu_mcp.server.limits``);
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
are kept in Redis (``redu_mcp.server.shared_limits``), and a request for a session another replica
serves is told so (404) instead of the SDK's bare "Session not found".

Nothing OAuth-shaped is advertised: there is no authorization server, so there is no protected
resource metadata document (the well-known paths answer 404) and the challenge names none.
"""

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
from redu_mcp.server.http._refusals import QuietWarnings
from redu_mcp.server.http._run import client_setup, replica_notes, run_http
from redu_mcp.server.http._sessions import SESSION_ELSEWHERE, PerPrincipalSessions
from redu_mcp.server.http._verdicts import Accepted, BearerVerifier, Rejected, Throttled, Unavailable, Verdict
from redu_mcp.server.http._verifiers import (
    MAX_REMEMBERED_KEYS,
    UNAVAILABLE_RETRY_AFTER,
    VERIFIED_KEY_TTL,
    ReduKeyVerifier,
    StaticTokenVerifier,
)

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
    "run_http",
]
