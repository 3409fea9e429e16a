"""Settings from the environment first and command-line flags second (the table in the README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from redu_mcp.api import DEFAULT_BASE_URL
from redu_mcp.server.settings import ConfigError, Settings

__all__ = ["ConfigError", "settings_from_env"]


def settings_from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``REDU_*`` environment variables, with explicit overrides (from flags) on top.

    An override of ``None`` means "not given": the environment (or the default) stands."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {
        "api_key": env.get("REDU_API_KEY") or None,
        "api_url": env.get("REDU_API_URL") or DEFAULT_BASE_URL,
        "access": env.get("REDU_MCP_ACCESS") or "full",
        "secrets": env.get("REDU_MCP_SECRETS") or "file",
        "auth_token": env.get("REDU_MCP_AUTH_TOKEN") or None,
    }
    if env.get("REDU_MCP_POLL_INTERVAL"):
        try:
            values["poll_interval_seconds"] = float(env["REDU_MCP_POLL_INTERVAL"])
        except ValueError:
            raise ConfigError("REDU_MCP_POLL_INTERVAL must be a number of seconds") from None
    if env.get("REDU_MCP_CREDENTIALS_DIR"):
        values["credentials_dir"] = Path(env["REDU_MCP_CREDENTIALS_DIR"]).expanduser()
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)
