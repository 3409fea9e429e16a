"""Serving from the command line: what the process checks and says at start-up, then uvicorn.

At start-up it checks that Redis answers (if one is configured), prints the URL with a client
configuration that works with it (the one place a generated token is shown), and logs what matters
when several replicas serve together. The texts come from plain functions (``client_setup``,
``replica_notes``), so tests read them without starting a server.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import anyio

from redu_mcp.server.http._app import advertised_url, build_http_app
from redu_mcp.server.runtime import Runtime
from redu_mcp.server.settings import Settings

log = logging.getLogger("redu_mcp.server.http")  # one logger for the package, like httpx2's


def client_setup(settings: Settings) -> str:
    """What the start-up banner says: the URL, and a client configuration that works with it.

    Only a token this server generated is shown (once, like a notebook server's): an operator's
    ``REDU_MCP_AUTH_TOKEN`` is referred to by name, a pass-through key by a placeholder."""
    url = advertised_url(settings)
    lines = [f"redu-mcp: serving MCP over streamable HTTP at {url}"]
    header: str | None
    if settings.http_auth == "token" and settings.auth_token_file is not None:
        header = f"Bearer {settings.auth_token}"
        lines.append(f"  auth: a bearer token generated for this user, kept in {settings.auth_token_file} (mode 0600)")
    elif settings.http_auth == "token":
        header = "Bearer ${REDU_MCP_AUTH_TOKEN}"  # the shell expands it; so do JSON configs that support ${VAR}
        lines.append("  auth: the bearer token in REDU_MCP_AUTH_TOKEN")
    elif settings.http_auth == "passthrough":
        header = "Bearer ${REDU_API_KEY}"
        lines.append("  auth: each client sends its own Redu API key as its bearer token")
    else:
        header = None
        lines.append("  auth: NONE (--auth none): every local user and program can use it")
    name = "redu"
    add = f"claude mcp add --transport http {name} {url}"
    entry: dict[str, Any] = {"type": "http", "url": url}
    if header is not None:
        add += f' --header "Authorization: {header}"'
        entry["headers"] = {"Authorization": header}
    lines += [
        "  Claude Code:",
        f"    {add}",
        "  mcpServers entry (JSON client configuration):",
        "    " + json.dumps({"mcpServers": {name: entry}}),
    ]
    return "\n".join(lines) + "\n"


def replica_notes(settings: Settings) -> list[tuple[int, str]]:
    """What the start-up log says about running this server as one of several replicas."""
    from redu_mcp.sharing import describe_url

    notes: list[tuple[int, str]] = []
    # Several replicas are plausible only where the operator set up for them (no sessions, shared
    # Redis) or serves beyond this machine; one local server needs no word about replicas.
    several = settings.stateless or settings.redis_url is not None or not settings.loopback
    if several and not settings.state_keys:
        notes.append(
            (
                logging.WARNING,
                "REDU_MCP_STATE_KEY is not set: request state (a delete's confirmation) is sealed with a key of "
                "this process only, so only one replica is supported (a confirmation answered through another "
                "replica, or after a restart, is refused)",
            )
        )
    if settings.redis_url is not None:
        notes.append(
            (
                logging.INFO,
                f"sharing state with the other replicas through Redis at {describe_url(settings.redis_url)}: one "
                "poll per instance per interval, the key cache, session and key-check limits",
            )
        )
    if settings.stateless:
        notes.append(
            (
                logging.INFO,
                "stateless HTTP (--stateless): no sessions; 2025-11-25 clients cannot be asked to confirm a delete "
                "mid-call (they confirm with confirm_name) and cannot cancel a call",
            )
        )
    elif settings.state_keys or settings.redis_url is not None:
        notes.append(
            (
                logging.INFO,
                "sessions are kept per replica: behind a round-robin balancer, 2025-11-25 clients need sticky "
                "routing on the Mcp-Session-Id header, or run every replica with --stateless",
            )
        )
    return notes


async def _check_redis(runtime: Runtime) -> None:
    """Say at start-up whether Redis answers (a wrong address or password shows at once, not at the
    first request); the server starts either way: it falls back to its own state until Redis answers."""
    shared = runtime.shared
    assert shared is not None
    try:
        if await shared.ping():
            log.info("Redis at %s answers", shared.where)
    finally:
        await shared.aclose()  # its connections belong to this event loop, not the server's


def run_http(settings: Settings, **runtime_options: Any) -> None:
    """Serve until interrupted; ``runtime_options`` as for ``build_http_app`` (the sandbox's client)."""
    import uvicorn

    app, runtime = build_http_app(settings, **runtime_options)
    if runtime.shared is not None:
        runtime.shared.prepare()  # its import costs a fraction of a second: now, not in the first request
        anyio.run(_check_redis, runtime)
    if settings.http_auth == "none":
        log.warning(
            "serving HTTP on %s WITHOUT authentication (--auth none): every user and program on this machine "
            "can use this server, with its API key at access '%s'",
            settings.host,
            settings.access,
        )
    sys.stderr.write(client_setup(settings))  # the one place a generated token is shown
    sys.stderr.flush()
    for level, note in replica_notes(settings):
        log.log(level, note)
    if runtime.shared is not None:
        log.info("this replica's id in the shared state (leases, sessions): %s", runtime.replica)
    log.info("serving MCP on %s (auth: %s)", advertised_url(settings), settings.http_auth)
    # log_config=None: uvicorn's records go through the root handler and its scrubbing filter too.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", lifespan="on", log_config=None)
