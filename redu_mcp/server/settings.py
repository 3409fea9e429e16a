"""What the server is configured with, validated. ``redu_mcp.config`` fills it from env and flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeVar, get_args

from redu_mcp.api import DEFAULT_BASE_URL
from redu_mcp.provisioning.credentials import SecretsMode
from redu_mcp.server.specs import ACCESS_LEVELS, AccessLevel

Transport = Literal["stdio", "http"]
HttpAuthMode = Literal["none", "token", "passthrough"]

SECRETS_MODES: Final[tuple[SecretsMode, ...]] = get_args(SecretsMode)
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
MIN_AUTH_TOKEN_LENGTH: Final = 16  # a shorter operator token is refused when serving HTTP
#: Seconds between polls of an instance: the API's docs ask for one every 15-30 s while it provisions.
API_POLL_INTERVAL: Final = 15.0
MIN_API_POLL_INTERVAL: Final = 5.0  # an operator may poll the real API faster, but not faster than this
SANDBOX_POLL_INTERVAL: Final = 1.0

C = TypeVar("C", bound=str)


class ConfigError(ValueError):
    """A setting has a value we cannot run with; the message says which and what is allowed."""


def _choice(value: object, allowed: tuple[C, ...], what: str, where: str) -> C:
    normalized = value.strip().lower() if isinstance(value, str) else value
    for choice in allowed:
        if normalized == choice:
            return choice
    raise ConfigError(f"invalid {what} {value!r} (set by {where}): use one of {', '.join(allowed)}")


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/redu-mcp`` (default ``~/.local/state/redu-mcp``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "redu-mcp"


@dataclass
class Settings:
    api_key: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_BASE_URL
    sandbox: bool = False
    engines: bool = False
    access: AccessLevel = "full"
    secrets: SecretsMode = "file"
    credentials_dir: Path = field(default_factory=lambda: default_state_dir() / "credentials")
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/mcp"
    auth_token: str | None = field(default=None, repr=False)  # static operator bearer token for HTTP
    auth_passthrough: bool = False  # each HTTP client sends its own Redu API key as its bearer token
    provisioning_seconds: float = 3.0  # how long sandbox instances take to become ready
    poll_interval_seconds: float | None = None  # None: 15 s against the real API, 1 s in the sandbox

    def __post_init__(self) -> None:
        # Case and surrounding blanks are forgiven ("READ " is read); anything else stops the server:
        # a mistyped restriction must never fall back to a wider level.
        self.access = _choice(self.access, ACCESS_LEVELS, "access level", "--access / REDU_MCP_ACCESS")
        self.secrets = _choice(self.secrets, SECRETS_MODES, "secrets mode", "--secrets / REDU_MCP_SECRETS")
        if self.auth_token and self.auth_passthrough:
            raise ConfigError("choose one HTTP auth mode: REDU_MCP_AUTH_TOKEN or --auth passthrough, not both")
        if self.engines and not self.sandbox:
            raise ConfigError("--engines only makes sense with --sandbox")
        if not self.path.startswith("/"):
            self.path = "/" + self.path
        if self.poll_interval_seconds is not None and not self.poll_interval_seconds > 0:
            raise ConfigError("the poll interval (--poll-interval / REDU_MCP_POLL_INTERVAL) must be a positive number")

    @property
    def http_auth(self) -> HttpAuthMode:
        if self.auth_passthrough:
            return "passthrough"
        return "token" if self.auth_token else "none"

    @property
    def poll_interval(self) -> float:
        """Seconds between polls: the server decides, never the model. Against the real API an
        operator's setting is honoured down to ``MIN_API_POLL_INTERVAL``."""
        if self.sandbox:
            return self.poll_interval_seconds or SANDBOX_POLL_INTERVAL
        return max(MIN_API_POLL_INTERVAL, self.poll_interval_seconds or API_POLL_INTERVAL)

    @property
    def configured(self) -> bool:
        """Can tools reach an API at all (a key, the sandbox, or keys passed through per request)?"""
        return bool(self.api_key) or self.sandbox or self.auth_passthrough

    def check_http_exposure(self, *, serving_http: bool | None = None) -> None:
        """Refuse to serve a non-loopback address to anyone who asks, or behind a guessable token.

        Checked when ``transport`` is http, or whenever ``serving_http`` says so (``build_http_app``
        checks it for every app it builds, whatever ``transport`` says)."""
        serving = self.transport == "http" if serving_http is None else serving_http
        if serving and self.http_auth == "token" and len(self.auth_token or "") < MIN_AUTH_TOKEN_LENGTH:
            raise ConfigError(
                f"REDU_MCP_AUTH_TOKEN is too short to guard a server: use at least {MIN_AUTH_TOKEN_LENGTH} "
                "random characters, e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if serving and self.host not in LOOPBACK_HOSTS and self.http_auth == "none":
            raise ConfigError(
                f"refusing to serve HTTP on {self.host} without authentication: set REDU_MCP_AUTH_TOKEN "
                "(a bearer token clients must send) or use --auth passthrough (each client sends its own "
                "Redu API key), or bind 127.0.0.1"
            )
