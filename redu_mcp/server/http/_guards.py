"""The refusals made before any credential is looked at: what the URL carries, and who is asking.

Credentials in the query string end up in logs (400, whatever they are). A ``Host`` this server
does not answer to (421) or a browser ``Origin`` it does not allow (403) is how DNS rebinding and
foreign web pages show; refusing them first means such a request costs nothing, not even a key
check. ``host_rules`` also configures the SDK's own transport security, so both apply the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from redu_mcp.server.http._refusals import QuietWarnings
from redu_mcp.server.http._settings import WILDCARD_HOSTS
from redu_mcp.server.settings import Settings

#: Query parameter names that look like credentials (``api_key``, ``X-Api-Key``, ``access_token``,
#: ``authorization``, ``redu_key``...): a request carrying one is refused. The MCP endpoint takes no
#: query parameters at all, so refusing broadly costs nothing.
CREDENTIAL_WORDS = ("key", "token", "auth", "bearer", "secret", "passw", "credential")
LOOPBACK_ALLOWED_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ALLOWED_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")


class RejectCredentialsInQuery:
    """ASGI middleware: 400 for any request whose query string carries something like a key."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
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


@dataclass(frozen=True)
class HostRules:
    """Which ``Host`` and ``Origin`` headers a request may carry (the SDK's matching: exact, or ``x:*``)."""

    check_host: bool  # off for a non-loopback bind without --public-url: the names it is reached by are unknown
    hosts: tuple[str, ...]
    origins: tuple[str, ...]

    @staticmethod
    def _matches(value: str, allowed: tuple[str, ...]) -> bool:
        return value in allowed or any(a.endswith(":*") and value.startswith(a[:-1]) for a in allowed)

    def host_allowed(self, host: str | None) -> bool:
        return not self.check_host or (bool(host) and self._matches(host or "", self.hosts))

    def origin_allowed(self, origin: str | None) -> bool:
        return not origin or self._matches(origin, self.origins)  # no Origin: not a browser

    def for_sdk(self) -> TransportSecuritySettings:
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=self.check_host,
            allowed_hosts=list(self.hosts),
            allowed_origins=list(self.origins),
        )


def host_rules(settings: Settings) -> HostRules:
    """Hosts: loopback names with any port, the public URL's host (as a proxy forwards it: with its
    port, default or not, and without) and a specific bind address. Origins: loopback pages, the public URL's origin,
    and ``allowed_origins``."""
    hosts: list[str] = list(LOOPBACK_ALLOWED_HOSTS)
    origins: list[str] = list(LOOPBACK_ALLOWED_ORIGINS)
    if settings.public_url and settings.host not in WILDCARD_HOSTS and not settings.loopback:
        hosts.append(f"[{settings.host}]:*" if ":" in settings.host else f"{settings.host}:*")  # direct checks
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        hostname = parts.hostname or ""
        shown = f"[{hostname}]" if ":" in hostname else hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        hosts += [parts.netloc, shown, f"{shown}:{port}"]
        origins.append(f"{parts.scheme}://{parts.netloc}")
    origins += settings.allowed_origins
    check_host = settings.loopback or settings.public_url is not None
    return HostRules(check_host, tuple(dict.fromkeys(hosts)), tuple(dict.fromkeys(origins)))


class CheckHostAndOrigin:
    """ASGI middleware: 421 for a ``Host`` not served here, 403 for a browser ``Origin`` not allowed.

    The SDK checks the same rules again (and only on its endpoint); checking first means a
    rebinding page costs nothing, not even a key check."""

    def __init__(self, app: Any, rules: HostRules) -> None:
        self.app = app
        self.rules = rules
        self._warnings = QuietWarnings()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            if not self.rules.host_allowed(headers.get("host")):
                # Often a proxy forwarding another name than --public-url: say which (it is no secret).
                host = (headers.get("host") or "")[:100]
                self._warnings.warn("host", "421 for Host header %r: not one this server answers to", host)
                await Response("Invalid Host header", status_code=421)(scope, receive, send)
                return
            if not self.rules.origin_allowed(headers.get("origin")):
                origin = (headers.get("origin") or "")[:100]
                self._warnings.warn("origin", "403 for browser origin %r: not allowed (--allowed-origin)", origin)
                await Response("Invalid Origin header", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
