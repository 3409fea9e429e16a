"""The ``redu-mcp`` command: serve (default), ``sandbox`` (the emulator on a port) and ``demo``.

Start-up is what a desktop client waits for, so this module imports the server only once it knows
it has to serve, and nothing heavy before that.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redu_mcp import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redu-mcp",
        description="MCP server for Redu Cloud managed PostgreSQL and Redis.",
        epilog="Commands: 'redu-mcp demo' (try it), 'redu-mcp sandbox --port 8080' (the API emulator).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--api-url", help="Redu API base URL (env REDU_API_URL; default https://api.redu.cloud/v1)")
    parser.add_argument("--sandbox", action="store_true", help="run against the built-in API emulator (no key needed)")
    parser.add_argument(
        "--engines", action="store_true", help="with --sandbox: run real PostgreSQL/Redis servers (Linux only)"
    )
    parser.add_argument("--access", help="read | create | full (env REDU_MCP_ACCESS; default full)")
    parser.add_argument(
        "--data",
        help="off | read | write: how far tools may use an instance's data (env REDU_MCP_DATA; default read)",
    )
    parser.add_argument("--secrets", help="file | reveal (env REDU_MCP_SECRETS; default file)")
    parser.add_argument("--confirm", help="auto | human: who may approve a delete (env REDU_MCP_CONFIRM; default auto)")
    parser.add_argument(
        "--tools",
        action="append",
        metavar="NAMES",
        help="only these tools or groups (instances, lookups, data), under the access level; repeatable or "
        "comma-separated (env REDU_MCP_TOOLS; default: every tool the level allows)",
    )
    parser.add_argument(
        "--audit-log", help="audit trail: file path(s) and/or 'stderr', comma-separated (env REDU_MCP_AUDIT_LOG)"
    )
    parser.add_argument("--credentials-dir", type=Path, help="where --secrets file saves passwords")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--path", default="/mcp", help="HTTP endpoint path (default /mcp)")
    parser.add_argument(
        "--auth",
        choices=["none", "token", "passthrough"],
        help="HTTP auth: token (default: REDU_MCP_AUTH_TOKEN, or on loopback a generated one), "
        "passthrough (each client's own Redu API key), none (loopback only)",
    )
    parser.add_argument(
        "--public-url",
        help="the MCP endpoint's URL as clients reach it, e.g. behind a proxy (env REDU_MCP_PUBLIC_URL)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="a browser origin allowed to call the server, e.g. https://app.example.com; repeatable or "
        "comma-separated (env REDU_MCP_ALLOWED_ORIGINS)",
    )
    parser.add_argument(
        "--stateless",
        action="store_true",
        help="HTTP without sessions, for several replicas behind a round-robin balancer (env REDU_MCP_STATELESS; "
        "2025-11-25 clients then cannot be asked to confirm a delete mid-call)",
    )
    parser.add_argument("--provisioning-seconds", type=float, help="sandbox: seconds until instances are ready")
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between status polls (env REDU_MCP_POLL_INTERVAL; default 15, at least 5, against the real API)",
    )
    parser.add_argument("--log-level", default=os.environ.get("REDU_MCP_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command")

    sandbox = sub.add_parser("sandbox", help="serve the Redu API emulator on a local port")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--provisioning-seconds", type=float, default=3.0)
    sandbox.add_argument("--page-size", type=int, default=50)
    sandbox.add_argument(
        "--engines", action="store_true", help="run real PostgreSQL/Redis servers per instance (Linux only)"
    )

    demo = sub.add_parser("demo", help="walk through the whole flow against the sandbox, over stdio")
    demo.add_argument(
        "--engines", action="store_true", help="also connect to real PostgreSQL/Redis servers (Linux only)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    from redu_mcp.logs import setup_logging

    setup_logging(args.log_level.upper())  # no secret in any line, at any level
    if args.engines:  # serving, the sandbox on a port and the demo alike
        from redu_mcp.sandbox.platforms import engines_unsupported

        if (why := engines_unsupported()) is not None:
            print(f"redu-mcp{' ' + args.command if args.command else ''}: {why}", file=sys.stderr)
            sys.exit(2)
    if sys.platform == "win32":
        # psycopg's async connections (the data tools) need a selector event loop, not Windows' default.
        import asyncio

        asyncio.set_event_loop_policy(asyncio.WindowsSelectorEventLoopPolicy())
    if args.command == "sandbox":
        from redu_mcp.sandbox.engines import EngineUnavailable
        from redu_mcp.sandbox.serve import serve

        try:
            serve(
                args.host,
                args.port,
                provisioning_seconds=args.provisioning_seconds,
                page_size=args.page_size,
                engines=args.engines,
            )
        except EngineUnavailable as exc:
            print(f"redu-mcp sandbox: {exc}", file=sys.stderr)
            sys.exit(2)
        return
    if args.command == "demo":
        from redu_mcp.demo import run_demo

        sys.exit(run_demo(engines=args.engines))
    _serve(args)


def _serve(args: argparse.Namespace) -> None:
    from redu_mcp.config import ConfigError, settings_from_env, split_list

    env = dict(os.environ)
    if args.auth == "none":
        env.pop("REDU_MCP_AUTH_TOKEN", None)  # the flag is explicit: it wins over the environment
    origins = tuple(o for value in args.allowed_origin or () for o in split_list(value)) or None
    tools = tuple(name for value in args.tools or () for name in split_list(value)) or None
    try:
        settings = settings_from_env(
            env,
            api_url=args.api_url,
            sandbox=args.sandbox or None,
            engines=args.engines or None,
            access=args.access,
            data=args.data,
            secrets=args.secrets,
            confirm=args.confirm,
            tools=tools,
            audit_log=args.audit_log,
            credentials_dir=args.credentials_dir,
            transport=args.transport,
            host=args.host,
            port=args.port,
            path=args.path,
            auth_passthrough=(args.auth == "passthrough") or None,
            auth_none=(args.auth == "none") or None,
            public_url=args.public_url,
            allowed_origins=origins,
            provisioning_seconds=args.provisioning_seconds,
            poll_interval_seconds=args.poll_interval,
            stateless=args.stateless or None,
        )
        if settings.tools:
            from redu_mcp.server.tools import tools_for

            tools_for(
                settings.access, settings.data, settings.tools
            )  # an unknown name stops the start before anything is made
        if settings.transport == "http" and settings.http_auth == "token" and not settings.auth_token:
            if settings.loopback:
                # Any account on this machine can reach a loopback port: it still needs a token.
                from redu_mcp.server.http import load_or_create_token

                local = load_or_create_token(settings.state_dir)
                settings.auth_token, settings.auth_token_file = local.token, local.path
            elif args.auth == "token":
                raise ConfigError("--auth token needs REDU_MCP_AUTH_TOKEN in the environment")
        settings.check_http_exposure()
    except ConfigError as exc:
        print(f"redu-mcp: {exc}", file=sys.stderr)
        sys.exit(2)
    if not settings.configured:
        logging.getLogger("redu_mcp").warning(
            "no REDU_API_KEY set and not --sandbox: the server starts, but every tool will say so"
        )
    if settings.engines:
        from redu_mcp.sandbox.engines import EngineUnavailable, check_engines_available

        try:
            check_engines_available()
        except EngineUnavailable as exc:
            print(f"redu-mcp: {exc}", file=sys.stderr)
            sys.exit(2)

    from redu_mcp.telemetry import configure_from_env

    configure_from_env()  # OpenTelemetry export, only when OTEL_* variables ask for it

    upstream = _sandbox_upstream(settings) if settings.sandbox else {}
    try:
        if settings.transport == "http":
            from redu_mcp.server.http import run_http

            run_http(settings, **upstream)
        else:
            from redu_mcp.server import build_server

            build_server(settings, log_level=args.log_level.upper(), **upstream).run()
    except ConfigError as exc:  # found while building (e.g. an audit log that cannot be opened)
        print(f"redu-mcp: {exc}", file=sys.stderr)
        sys.exit(2)


def _sandbox_upstream(settings: Any) -> dict[str, Any]:
    """The emulator as the server's upstream: its client, and stopping its engines (if any) when the
    server's last session ends. The command line builds it, so the MCP face never imports it."""
    from redu_mcp.sandbox import Sandbox

    provisioner = None
    if settings.engines:
        from redu_mcp.sandbox.engine_provisioner import EngineProvisioner

        provisioner = EngineProvisioner()
    sandbox = Sandbox(provisioning_seconds=settings.provisioning_seconds, provisioner=provisioner)
    return {"client": sandbox.client(), "on_close": sandbox.aclose}
