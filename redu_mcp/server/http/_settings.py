"""The HTTP server's settings: who may connect, from where, and how much each caller may take.

``Settings`` (``redu_mcp.server.settings``) holds every setting; what only serving HTTP needs is
checked here: bearer tokens, allowed origins, the public URL, the per-caller limits, and whether an
address may be served at all (``check_exposure``). Nothing here imports the rest of the HTTP
package, so settings can be checked before anything is served.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from redu_mcp.server.errors import ConfigError

if TYPE_CHECKING:
    from redu_mcp.server.settings import Settings

HttpAuthMode = Literal["none", "token", "passthrough"]
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS: Final = frozenset({"0.0.0.0", "::", ""})  # "every address": no name to advertise
MIN_AUTH_TOKEN_LENGTH: Final = 16  # a shorter operator token is refused when serving HTTP
MAX_BEARER_LENGTH: Final = 512  # a longer bearer token is refused unread (401), whatever the mode
#: What a well-formed bearer token is made of: visible ASCII, no blanks (RFC 6750's b64token is
#: stricter; this is "printable ASCII, sane length", so any operator token a shell can pass works).
BEARER_CHARS: Final = re.compile(r"[\x21-\x7e]+")
#: An allowed browser origin: scheme://host[:port], where the port may be ``*`` (any port).
ORIGIN_SHAPE: Final = re.compile(r"https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}|\*))?")


def well_formed_bearer(token: str) -> bool:
    """Printable ASCII without blanks or control characters, 1 to ``MAX_BEARER_LENGTH`` long."""
    return 0 < len(token) <= MAX_BEARER_LENGTH and BEARER_CHARS.fullmatch(token) is not None


@dataclass(frozen=True)
class HttpLimits:
    """How much of the HTTP server one caller can take (env names in ``redu_mcp.config``).

    A *principal* is who a request authenticated as: everyone holding the operator's token is one
    principal; under pass-through each Redu user is one (all their keys together). Sessions are the
    handshake-era (2025-11-25 and older) sessions; 2026-07-28 requests open none."""

    max_sessions: int = 1000  # open sessions, all principals together (the SDK's own cap: 503 beyond)
    max_sessions_per_principal: int = 20  # open sessions of one principal (429 beyond)
    new_sessions_per_minute: int = 30  # sessions one principal may open per minute (429 beyond)
    session_idle_seconds: float = 1800.0  # a session with no request in flight this long is closed
    key_checks_per_minute: int = 30  # pass-through: GET /v1/me checks one client address may cause
    rejected_key_seconds: float = 30.0  # pass-through: how long a key the API refused is refused unasked

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_sessions_per_principal", "new_sessions_per_minute", "key_checks_per_minute"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"invalid HTTP limit {name}={value!r}: use a whole number of at least 1")
        for name in ("session_idle_seconds", "rejected_key_seconds"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ConfigError(f"invalid HTTP limit {name}={value!r}: use a positive number of seconds")


def check_public_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL naming a host (no credentials, query or fragment)."""
    try:
        parts = urlsplit(url.strip())
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if (
        parts is None
        or not port_ok
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"invalid public URL {url!r} (set by --public-url / REDU_MCP_PUBLIC_URL): use the address clients "
            "reach the MCP endpoint at, e.g. https://mcp.example.com/mcp"
        )
    return parts.geturl()


def check_origin(origin: str) -> str:
    """A browser origin as a browser sends it: ``scheme://host[:port]`` (``:*``: any port)."""
    cleaned = origin.strip().removesuffix("/")
    if not ORIGIN_SHAPE.fullmatch(cleaned):
        raise ConfigError(
            f"invalid allowed origin {origin!r} (set by --allowed-origin / REDU_MCP_ALLOWED_ORIGINS): use "
            "scheme://host[:port] as a browser sends it, e.g. https://app.example.com or http://localhost:*"
        )
    return cleaned


def check_exposure(settings: Settings, *, serving_http: bool | None = None) -> None:
    """Refuse to serve a non-loopback address to anyone who asks, or behind a guessable token.

    Checked when ``transport`` is http, or whenever ``serving_http`` says so (``build_http_app``
    checks it for every app it builds, whatever ``transport`` says)."""
    serving = settings.transport == "http" if serving_http is None else serving_http
    if not serving:
        return
    if not settings.loopback and (settings.auth_none or (settings.http_auth == "token" and not settings.auth_token)):
        explicit = " (--auth none is for loopback only)" if settings.auth_none else ""
        raise ConfigError(
            f"refusing to serve HTTP on {settings.host} without authentication{explicit}: set REDU_MCP_AUTH_TOKEN "
            "(a bearer token clients must send) or use --auth passthrough (each client sends its own "
            "Redu API key), or bind 127.0.0.1"
        )
    if settings.http_auth == "token" and not settings.auth_token:
        raise ConfigError(
            "no bearer token for HTTP: set REDU_MCP_AUTH_TOKEN (the redu-mcp command generates one on "
            "loopback when it is not set), or choose --auth passthrough or, on loopback only, --auth none"
        )
    if settings.http_auth == "token" and len(settings.auth_token or "") < MIN_AUTH_TOKEN_LENGTH:
        raise ConfigError(
            f"REDU_MCP_AUTH_TOKEN is too short to guard a server: use at least {MIN_AUTH_TOKEN_LENGTH} "
            "random characters, e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if settings.http_auth == "token" and not well_formed_bearer(settings.auth_token or ""):
        raise ConfigError(
            f"REDU_MCP_AUTH_TOKEN cannot be sent as a bearer token: use printable ASCII without blanks, at "
            f"most {MAX_BEARER_LENGTH} characters, e.g. from: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
