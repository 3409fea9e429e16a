"""Settings from the environment first and command-line flags second (the tables in the README and docs/deploying.md)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from redu_mcp.api import DEFAULT_BASE_URL, api_key_problem
from redu_mcp.server.settings import ConfigError, HttpLimits, Settings

__all__ = ["LIMIT_ENV", "ConfigError", "settings_from_env", "split_list"]

#: ``HttpLimits`` fields and the environment variables that set them.
LIMIT_ENV = {
    "max_sessions": "REDU_MCP_MAX_SESSIONS",
    "max_sessions_per_principal": "REDU_MCP_MAX_SESSIONS_PER_PRINCIPAL",
    "new_sessions_per_minute": "REDU_MCP_NEW_SESSIONS_PER_MINUTE",
    "session_idle_seconds": "REDU_MCP_SESSION_IDLE_SECONDS",
    "key_checks_per_minute": "REDU_MCP_KEY_CHECKS_PER_MINUTE",
    "rejected_key_seconds": "REDU_MCP_REJECTED_KEY_SECONDS",
}


def _limits_from_env(env: Mapping[str, str]) -> HttpLimits:
    values: dict[str, Any] = {}
    for name, variable in LIMIT_ENV.items():
        raw = (env.get(variable) or "").strip()
        if not raw:
            continue
        kind = float if name.endswith("_seconds") else int
        try:
            values[name] = kind(raw)
        except ValueError:
            unit = "a number of seconds" if kind is float else "a whole number"
            raise ConfigError(f"invalid {variable}={raw!r}: use {unit}") from None
    try:
        return HttpLimits(**values)
    except ConfigError as exc:
        names = ", ".join(f"{field}: {variable}" for field, variable in LIMIT_ENV.items())
        raise ConfigError(f"{exc} ({names})") from None


#: Values ``REDU_MCP_STATELESS`` may take, and what they mean.
BOOLEAN_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _flag(env: Mapping[str, str], variable: str) -> bool | None:
    raw = (env.get(variable) or "").strip().lower()
    if not raw:
        return None
    if raw not in BOOLEAN_WORDS:
        raise ConfigError(f"invalid {variable}={raw!r}: use 1 or 0 (true/false, yes/no, on/off)")
    return BOOLEAN_WORDS[raw]


def state_keys_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    """The request-state keys: ``REDU_MCP_STATE_KEY``, or the file ``REDU_MCP_STATE_KEY_FILE`` names
    (a mounted secret). Comma-separated: the first seals, all unseal (rotation). Never echoed."""
    value = env.get("REDU_MCP_STATE_KEY") or None
    path = env.get("REDU_MCP_STATE_KEY_FILE") or None
    if value and path:
        raise ConfigError("set REDU_MCP_STATE_KEY or REDU_MCP_STATE_KEY_FILE, not both")
    if path:
        try:
            value = _read_key_file(Path(path).expanduser())
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(f"cannot read REDU_MCP_STATE_KEY_FILE {path}: {reason}") from None
        if not value.strip():
            raise ConfigError(f"REDU_MCP_STATE_KEY_FILE {path} is empty")
    return split_list(value)


def _read_key_file(path: Path) -> str:
    """The state key file's text, if only this account can read and write it (a mounted secret
    usually is; ``PermissionError`` saying what is wrong otherwise). Where ``os`` has no owners
    (Windows), the file is read as it is."""
    with path.open("rb") as handle:
        info = os.fstat(handle.fileno())
        if hasattr(os, "getuid"):
            mode = stat.S_IMODE(info.st_mode)
            if info.st_uid not in (os.getuid(), 0):
                raise PermissionError(errno.EPERM, f"it belongs to another user (uid {info.st_uid})")
            if mode & 0o022:
                raise PermissionError(errno.EPERM, "others may write to it (make it 0600 or 0400)")
            if mode & 0o004:
                raise PermissionError(errno.EPERM, "everyone may read it (make it 0600 or 0400)")
        return handle.read(64 * 1024).decode("utf-8")


def split_list(value: str | None) -> tuple[str, ...]:
    """``a, b,c`` → ("a", "b", "c"): comma-separated, blanks dropped."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def api_key_from_env(env: Mapping[str, str]) -> str | None:
    """``REDU_API_KEY``, refused when it cannot be a key (a placeholder pasted from the README, a
    trailing newline): one line at start-up beats an error from every tool. Never echoed."""
    key = env.get("REDU_API_KEY") or None
    problem = api_key_problem(key) if key else None
    if problem:
        raise ConfigError(f"REDU_API_KEY {problem}: set it to your key from the Redu console")
    return key


def settings_from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``REDU_*`` environment variables, with explicit overrides (from flags) on top.

    An override of ``None`` means "not given": the environment (or the default) stands."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {
        "api_key": api_key_from_env(env),
        "api_url": env.get("REDU_API_URL") or DEFAULT_BASE_URL,
        "access": env.get("REDU_MCP_ACCESS") or "full",
        "data": env.get("REDU_MCP_DATA") or "read",
        "pg_sslmode": env.get("REDU_MCP_PG_SSLMODE") or "prefer",
        "secrets": env.get("REDU_MCP_SECRETS") or "file",
        "confirm": env.get("REDU_MCP_CONFIRM") or "auto",
        "tools": split_list(env.get("REDU_MCP_TOOLS")),
        "audit_log": env.get("REDU_MCP_AUDIT_LOG") or None,
        "auth_token": env.get("REDU_MCP_AUTH_TOKEN") or None,
        "public_url": env.get("REDU_MCP_PUBLIC_URL") or None,
        "allowed_origins": split_list(env.get("REDU_MCP_ALLOWED_ORIGINS")),
        "http_limits": _limits_from_env(env),
        "state_keys": state_keys_from_env(env),
        "redis_url": env.get("REDU_MCP_REDIS_URL") or None,
        "stateless": bool(_flag(env, "REDU_MCP_STATELESS")),
    }
    if env.get("REDU_MCP_POLL_INTERVAL"):
        try:
            values["poll_interval_seconds"] = float(env["REDU_MCP_POLL_INTERVAL"])
        except ValueError:
            raise ConfigError("REDU_MCP_POLL_INTERVAL must be a number of seconds") from None
    if env.get("REDU_MCP_PG_SSLROOTCERT"):
        values["pg_sslrootcert"] = Path(env["REDU_MCP_PG_SSLROOTCERT"]).expanduser()
    if env.get("REDU_MCP_CREDENTIALS_DIR"):
        values["credentials_dir"] = Path(env["REDU_MCP_CREDENTIALS_DIR"]).expanduser()
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)
