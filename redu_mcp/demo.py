"""``redu-mcp demo``: the newcomer's first command.

Starts this server over stdio against the sandbox, connects with the official MCP client, and walks
the whole flow, printing what each tool returned: look up, create PostgreSQL and Redis, wait with a
live progress bar, (with ``--engines``) use both through the data tools, get, and delete (the demo
answers the confirmation question itself).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

BAR_WIDTH = 28


class Printer:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    def _style(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def step(self, title: str) -> None:
        print(f"\n{self._style('1;36', '▶ ' + title)}", flush=True)

    def call(self, tool: str, args: dict[str, Any]) -> None:
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        print(self._style("2", f"  → {tool}({shown})"), flush=True)

    def result(self, value: Any, *, keep: tuple[str, ...] | None = None) -> None:
        if isinstance(value, dict) and keep:
            value = {k: value[k] for k in keep if k in value}
        text = json.dumps(value, indent=2)
        print("\n".join("    " + line for line in text.splitlines()), flush=True)

    def note(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def progress(self, label: str, fraction: float, message: str) -> None:
        filled = int(BAR_WIDTH * max(0.0, min(1.0, fraction)))
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        end = "" if sys.stdout.isatty() else "\n"
        print(f"\r  {label} [{bar}] {message:<40}", end=end, flush=True)

    def done(self) -> None:
        print(f"\n{self._style('1;32', f'✔ Demo finished in {time.monotonic() - self.started:.1f}s.')}")


async def _demo(engines: bool) -> int:
    from mcp import Client, StdioServerParameters
    from mcp.types import ElicitResult

    out = Printer()
    workdir = Path(tempfile.mkdtemp(prefix="redu-mcp-demo-"))
    credentials = workdir / "credentials"
    args = [
        "-m",
        "redu_mcp",
        "--sandbox",
        "--provisioning-seconds",
        "4",
        "--credentials-dir",
        str(credentials),
        "--log-level",
        "WARNING",
    ]
    if engines:
        args += ["--engines", "--data", "write"]
    env = {"XDG_STATE_HOME": str(workdir / "state"), "PYTHONPATH": os.pathsep.join(sys.path)}
    params = StdioServerParameters(command=sys.executable, args=args, env=env)

    async def confirm(context: Any, params: Any) -> ElicitResult:
        out.note(f"? {params.message}")
        out.note("  (the demo answers yes for you; a real client asks the user)")
        return ElicitResult(action="accept", content={"confirm": True})

    async def call(client: Client, tool: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        out.call(tool, arguments)
        result = await client.call_tool(tool, arguments, **kwargs)
        if result.is_error:
            raise RuntimeError(" ".join(getattr(block, "text", "") for block in result.content))
        return result.structured_content or {}

    out.step("Starting redu-mcp over stdio against the sandbox (nothing is real or billed)")
    try:
        async with Client(params, elicitation_callback=confirm, read_timeout_seconds=120) as client:
            info = client.server_info
            out.note(
                f"connected: {info.name if info else 'redu-mcp'} {info.version if info else ''}, "
                f"protocol {client.protocol_version}, {len((await client.list_tools()).tools)} tools"
            )

            out.step("Who am I?")
            out.result(await call(client, "whoami", {}))

            out.step("Look up what a create needs (one call)")
            options = await call(client, "list_create_options", {})
            suggested = options["suggested"]  # the sandbox's account decides every required value
            common = {field: suggested[field]["value"] for field in ("flavor_id", "network_id", "keypair_name")}
            for field, value in common.items():
                out.note(f"{field + ':':<13} {value}  (suggested: {suggested[field]['reason']})")

            out.step("Create a PostgreSQL database and a Redis instance")
            database = await call(client, "create_database", {"name": "demo-db", **common})
            out.result(database, keep=("created", "instance", "password_delivery", "credentials_file", "message"))
            redis = await call(client, "create_redis", {"name": "demo-cache", **common})
            out.result(redis, keep=("created", "instance", "password_delivery", "credentials_file"))

            out.step("Wait for both to be ready (progress streams from the server)")
            ready: dict[str, dict[str, Any]] = {}
            for kind, created in (("database", database), ("redis", redis)):
                id = created["instance"]["id"]

                async def on_progress(
                    progress: float, total: float | None, message: str | None, kind: str = kind
                ) -> None:
                    out.progress(f"{kind:<8}", progress / total if total else 0.0, message or "")

                ready[kind] = await call(
                    client, "wait_for_ready", {"kind": kind, "id": id}, progress_callback=on_progress
                )
                out.progress(
                    f"{kind:<8}", 1.0, f"{ready[kind]['instance']['status']} after {ready[kind]['waited_seconds']} s"
                )
                print()
            out.result(ready["database"], keep=("ready", "connection", "credentials_file"))

            if engines:
                out.step("Use the database through the server (its password never enters the conversation)")
                db_id = database["instance"]["id"]
                checked = await call(client, "check_connection", {"kind": "database", "id": db_id})
                out.result(checked, keep=("ok", "tls", "authenticated", "server_version", "round_trip_ms"))
                migration = {
                    "id": db_id,
                    "version": "0001",
                    "name": "create orders",
                    "sql": "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)",
                }
                out.result(await call(client, "apply_migration", migration), keep=("applied", "version", "message"))
                insert = {
                    "id": db_id,
                    "query": "INSERT INTO orders (item) VALUES ($1), ($2)",
                    "parameters": ["coffee", "tea"],
                }
                out.result(await call(client, "run_sql", insert), keep=("command", "committed"))
                select = {"id": db_id, "query": "SELECT id, item FROM orders ORDER BY id"}
                out.result(await call(client, "run_sql", select), keep=("columns", "rows"))
                out.step("Use Redis through the server (the same: its password stays in the server)")
                cache_id = redis["instance"]["id"]
                greeting = {"id": cache_id, "command": "SET", "arguments": ["greeting", "hello from redu-mcp"]}
                out.result(await call(client, "run_redis_command", greeting), keep=("command", "value", "writes"))
                read = {"id": cache_id, "command": "GET", "arguments": ["greeting"]}
                out.result(await call(client, "run_redis_command", read), keep=("command", "value"))
                described = await call(client, "describe_redis", {"id": cache_id})
                out.result(described, keep=("version", "databases", "keys"))

            out.step("Inspect one")
            out.result(
                await call(client, "get_database", {"id": database["instance"]["id"]}),
                keep=("id", "name", "status", "host", "port", "version"),
            )

            out.step("Delete both (by id and exact name; the server also asks the user)")
            for kind, created in (("database", database), ("redis", redis)):
                instance = created["instance"]
                deleted = await call(client, f"delete_{kind}", {"id": instance["id"], "confirm_name": instance["name"]})
                out.note(deleted["message"])
            out.result(await call(client, "list_databases", {}), keep=("total", "instances"))
    except Exception as exc:  # the demo explains; it does not dump a traceback on a newcomer
        print(f"\n✘ The demo stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out.done()
    return 0


def run_demo(*, engines: bool = False) -> int:
    return anyio.run(_demo, engines)
