"""What the server is configured with, validated. ``redu_mcp.config`` fills it from env and flags.

Every setting is a field of ``Settings``; what only serving HTTP needs is checked by the HTTP
package's own rules (``redu_mcp.server.http._settings``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from redu_mcp.api import DEFAULT_BASE_URL
from redu_mcp.data import SSL_MODES, PostgresOptions, SslMode
from redu_mcp.provisioning.credentials import SecretsMode
from redu_mcp.server.errors import ConfigError
from redu_mcp.server.http._settings import (
    BEARER_CHARS,
    LOOPBACK_HOSTS,
    HttpAuthMode,
    HttpLimits,
    check_exposure,
    check_origin,
    check_public_url,
)
from redu_mcp.server.specs import ACCESS_LEVELS, DATA_LEVELS, AccessLevel, DataLevel

Transport = Literal["stdio", "http"]
#: auto: the user is asked where the client can ask, else confirm_name suffices; human: only a
#: person answering the client's question can approve a delete (a client that cannot ask is refused).
ConfirmMode = Literal["auto", "human"]

SECRETS_MODES: Final[tuple[SecretsMode, ...]] = get_args(SecretsMode)
CONFIRM_MODES: Final[tuple[ConfirmMode, ...]] = get_args(ConfirmMode)
#: Seconds between polls of an instance: the API's docs ask for one every 15-30 s while it provisions.
API_POLL_INTERVAL: Final = 15.0
MIN_API_POLL_INTERVAL: Final = 5.0  # an operator may poll the real API faster, but not faster than this
SANDBOX_POLL_INTERVAL: Final = 1.0
#: A state key (``REDU_MCP_STATE_KEY``) is at least this many characters of secret randomness.
MIN_STATE_KEY_LENGTH: Final = 32
#: … and not visibly repetitive (``aaaa…``, ``abab…``): random text of that length has far more.
MIN_STATE_KEY_DISTINCT: Final = 8

APP_NAME: Final = "redu-mcp"

__all__ = [
    "APP_NAME",
    "CONFIRM_MODES",
    "SECRETS_MODES",
    "ConfigError",
    "ConfirmMode",
    "HttpAuthMode",
    "HttpLimits",
    "Settings",
    "Transport",
    "check_state_keys",
    "default_state_dir",
]

C = TypeVar("C", bound=str)


def _choice(value: object, allowed: tuple[C, ...], what: str, where: str) -> C:
    normalized = value.strip().lower() if isinstance(value, str) else value
    for choice in allowed:
        if normalized == choice:
            return choice
    raise ConfigError(f"invalid {what} {value!r} (set by {where}): use one of {', '.join(allowed)}")


def check_state_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The state keys, if each one can seal request state; errors never repeat a key."""
    for number, key in enumerate(keys, start=1):
        which = "REDU_MCP_STATE_KEY" if len(keys) == 1 else f"key {number} of REDU_MCP_STATE_KEY"
        if not BEARER_CHARS.fullmatch(key):
            raise ConfigError(f"{which} must be printable ASCII without blanks (one line, e.g. 64 hex digits)")
        if len(key) < MIN_STATE_KEY_LENGTH or len(set(key)) < MIN_STATE_KEY_DISTINCT:
            raise ConfigError(
                f"{which} is too short or too regular to seal request state: use 32 random bytes, e.g. from: "
                "python -c 'import secrets; print(secrets.token_hex(32))'"
            )
    if len(set(keys)) != len(keys):
        raise ConfigError("REDU_MCP_STATE_KEY lists the same key twice")
    return keys


def api_is_local(api_url: str) -> bool:
    """Is the API on this machine (a sandbox served on a port, a test double)?"""
    try:
        host = urlsplit(api_url).hostname or ""
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def default_state_dir() -> Path:
    """Where this server keeps its state (credentials, the HTTP token): ``$XDG_STATE_HOME/redu-mcp``
    when that is set (on any platform), else the platform's own per-user state folder (``platformdirs``):
    ``~/.local/state/redu-mcp`` on Linux, ``~/Library/Application Support/redu-mcp`` on macOS,
    ``%LOCALAPPDATA%\\redu-mcp`` on Windows. Chosen at call time, so a test can play another platform."""
    if os.environ.get("XDG_STATE_HOME"):
        return Path(os.environ["XDG_STATE_HOME"]) / "redu-mcp"
    from platformdirs.api import PlatformDirsABC

    platform: type[PlatformDirsABC]
    if sys.platform == "darwin":
        from platformdirs.macos import MacOS as platform
    elif sys.platform == "win32":
        from platformdirs.windows import Windows as platform
    else:
        from platformdirs.unix import Unix as platform
    return platform(APP_NAME, appauthor=False).user_state_path


@dataclass
class Settings:
    api_key: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_BASE_URL
    sandbox: bool = False
    engines: bool = False
    access: AccessLevel = "full"
    #: How far tools may use an instance's data: off, read (read-only transactions and commands), write.
    data: DataLevel = "read"
    pg_sslmode: SslMode = "prefer"  # libpq's sslmode for connections to instances (REDU_MCP_PG_SSLMODE)
    pg_sslrootcert: Path | None = None  # the CA bundle verify-ca/verify-full check against
    secrets: SecretsMode = "file"
    confirm: ConfirmMode = "auto"
    #: An allow-list of tool and group names (``--tools`` / ``REDU_MCP_TOOLS``) under the access level;
    #: empty: every tool the level allows. Checked against the tools when the server is built.
    tools: tuple[str, ...] = ()
    audit_log: str | None = None  # where audit records go: file paths and/or "stderr", comma-separated
    #: Where ``--secrets file`` saves passwords (per principal below it); None: the default, under
    #: ``state_dir`` (``credentials``, or for the sandbox a folder of its own: see ``credentials_root``).
    credentials_dir: Path | None = None
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/mcp"
    auth_token: str | None = field(default=None, repr=False)  # static operator bearer token for HTTP
    auth_passthrough: bool = False  # each HTTP client sends its own Redu API key as its bearer token
    auth_none: bool = False  # HTTP without authentication: the explicit, loopback-only opt-out
    auth_token_file: Path | None = None  # where a generated token is kept (set by the CLI, for its banner)
    public_url: str | None = None  # the MCP endpoint's URL as clients reach it (behind a proxy)
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed besides the defaults
    http_limits: HttpLimits = field(default_factory=HttpLimits)
    state_dir: Path = field(default_factory=default_state_dir)  # the generated HTTP token lives here
    provisioning_seconds: float = 3.0  # how long sandbox instances take to become ready
    poll_interval_seconds: float | None = None  # None: 15 s against the real API, 1 s in the sandbox
    #: Keys that seal request state (``REDU_MCP_STATE_KEY``): the first seals, every one unseals, so a
    #: key can be rotated. Empty: a key of this process only (one replica).
    state_keys: tuple[str, ...] = field(default=(), repr=False)
    redis_url: str | None = field(default=None, repr=False)  # state shared by replicas (may hold a password)
    #: HTTP without sessions: no request depends on which replica answered the previous one.
    stateless: bool = False

    def __post_init__(self) -> None:
        # Case and surrounding blanks are forgiven ("READ " is read); anything else stops the server:
        # a mistyped restriction must never fall back to a wider level.
        self.access = _choice(self.access, ACCESS_LEVELS, "access level", "--access / REDU_MCP_ACCESS")
        self.data = _choice(self.data, DATA_LEVELS, "data level", "--data / REDU_MCP_DATA")
        if self.data == "write" and self.access == "read":
            raise ConfigError(
                "--data write needs --access create or full: a read-only server cannot write to instances"
            )
        self.pg_sslmode = _choice(self.pg_sslmode, SSL_MODES, "PostgreSQL sslmode", "REDU_MCP_PG_SSLMODE")
        if self.pg_sslmode in ("verify-ca", "verify-full") and self.pg_sslrootcert is None:
            raise ConfigError(
                f"REDU_MCP_PG_SSLMODE={self.pg_sslmode} needs REDU_MCP_PG_SSLROOTCERT: the CA bundle to check "
                "the instances' certificates against"
            )
        if self.pg_sslrootcert is not None and not self.pg_sslrootcert.is_file():
            raise ConfigError(f"REDU_MCP_PG_SSLROOTCERT is not a readable file: {self.pg_sslrootcert}")
        self.secrets = _choice(self.secrets, SECRETS_MODES, "secrets mode", "--secrets / REDU_MCP_SECRETS")
        self.confirm = _choice(self.confirm, CONFIRM_MODES, "confirmation mode", "--confirm / REDU_MCP_CONFIRM")
        self.tools = tuple(dict.fromkeys(name.strip().lower() for name in self.tools if name.strip()))
        if self.auth_token and self.auth_passthrough:
            raise ConfigError("choose one HTTP auth mode: REDU_MCP_AUTH_TOKEN or --auth passthrough, not both")
        if self.auth_none and (self.auth_token or self.auth_passthrough):
            raise ConfigError("--auth none cannot be combined with a token or with pass-through")
        if self.public_url is not None:
            self.public_url = check_public_url(self.public_url)
        self.allowed_origins = tuple(dict.fromkeys(check_origin(o) for o in self.allowed_origins))
        if self.engines and not self.sandbox:
            raise ConfigError("--engines only makes sense with --sandbox")
        if not self.path.startswith("/"):
            self.path = "/" + self.path
        if self.poll_interval_seconds is not None and not self.poll_interval_seconds > 0:
            raise ConfigError("the poll interval (--poll-interval / REDU_MCP_POLL_INTERVAL) must be a positive number")
        self.state_keys = check_state_keys(tuple(self.state_keys))
        if self.redis_url is not None:
            from redu_mcp.sharing import check_url

            try:
                self.redis_url = check_url(self.redis_url)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            if not self.state_keys:
                raise ConfigError(
                    "REDU_MCP_REDIS_URL needs REDU_MCP_STATE_KEY (the same on every replica): what replicas share "
                    "in Redis is sealed with it, so a replica without it could neither trust nor read it; generate "
                    "one with: python -c 'import secrets; print(secrets.token_hex(32))'"
                )

    @property
    def credentials_root(self) -> Path:
        """The credentials folder: as configured, else ``state_dir/credentials``; the sandbox's
        instances are make-believe and die with the process, so by default their files go to
        ``state_dir/sandbox-credentials``, never beside real ones."""
        if self.credentials_dir is not None:
            return self.credentials_dir
        return self.state_dir / ("sandbox-credentials" if self.sandbox else "credentials")

    @property
    def http_auth(self) -> HttpAuthMode:
        """``token`` unless pass-through or the explicit ``none`` was chosen: HTTP always wants a
        bearer token by default (the CLI generates one on loopback when none is configured)."""
        if self.auth_passthrough:
            return "passthrough"
        if self.auth_none:
            return "none"
        return "token"

    @property
    def poll_interval(self) -> float:
        """Seconds between polls: the server decides, never the model. Against the real API an
        operator's setting is honoured down to ``MIN_API_POLL_INTERVAL``; against an API on this
        machine (``redu-mcp sandbox --port``), as given."""
        if self.sandbox:
            return self.poll_interval_seconds or SANDBOX_POLL_INTERVAL
        if self.poll_interval_seconds is not None and api_is_local(self.api_url):
            return self.poll_interval_seconds  # an API on this machine (a sandbox on a port) is not the real one
        return max(MIN_API_POLL_INTERVAL, self.poll_interval_seconds or API_POLL_INTERVAL)

    @property
    def configured(self) -> bool:
        """Can tools reach an API at all (a key, the sandbox, or keys passed through per request)?"""
        return bool(self.api_key) or self.sandbox or self.auth_passthrough

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    def check_http_exposure(self, *, serving_http: bool | None = None) -> None:
        """Refuse to serve HTTP where anyone could use it (see ``check_exposure``)."""
        check_exposure(self, serving_http=serving_http)

    @property
    def postgres_options(self) -> PostgresOptions:
        """How connections to PostgreSQL instances are made (TLS); the rest are the data layer's defaults."""
        return PostgresOptions(sslmode=self.pg_sslmode, sslrootcert=self.pg_sslrootcert)
