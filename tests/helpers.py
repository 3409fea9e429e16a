"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

from mcp import Client

from redu_mcp.retry import RetryPolicy

#: Retries that behave like production (same decisions) but wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(attempts=4, backoff_initial=0.001, backoff_max=0.01, retry_after_max=0.05, total_seconds=5)

#: Both protocol eras the SDK speaks: 2026-07-28 (auto) and 2025-11-25 with the initialize handshake.
MODES = ["auto", "legacy"]

REDIS_ARGS = {"flavor_id": "1", "network_id": "net-private", "keypair_name": "default-key"}
DATABASE_ARGS = dict(REDIS_ARGS)


def connect(server: Any, mode: str = "auto", **options: Any) -> Client:
    """A real MCP client on ``server`` in the given era."""
    return Client(server, mode=mode, **options)


async def create(client: Client, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    """Create an instance through the tool and return its structured result (asserting success)."""
    args = dict(DATABASE_ARGS if kind == "database" else REDIS_ARGS, name=name, **extra)
    result = await client.call_tool(f"create_{kind}", args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


def missing_engines() -> str | None:
    """Why the real-engine tests cannot run here (None when PostgreSQL and redis-server are installed)."""
    from redu_mcp.sandbox.engines import EngineUnavailable, check_engines_available

    try:
        check_engines_available()
    except EngineUnavailable as exc:
        return str(exc)
    return None
