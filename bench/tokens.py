"""Token footprint: how much of a model's context ``tools/list`` takes, per access level.

``chars`` is ``json.dumps`` of the tools array as the client receives it (default separators, as
most clients re-serialise it for the model); ``wire`` is the compact JSON the server sends; tokens
are estimated as chars / 4. The breakdown says where the characters go.

    uv run python bench/tokens.py [--dump DIR]   # --dump writes tools_<level>.json for inspection
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from common import Row, print_rows

LEVELS = ("read", "create", "full")


async def tools_for(level: str) -> list[dict[str, Any]]:
    from mcp import Client

    from redu_mcp.sandbox import Sandbox
    from redu_mcp.server import Settings, build_server

    settings = Settings(sandbox=True, access=level, credentials_dir=Path(tempfile.mkdtemp()) / "credentials")
    async with Client(build_server(settings, client=Sandbox().client()), mode="legacy") as client:
        listed = await client.list_tools()
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed.tools]


async def floor_tools() -> list[dict[str, Any]]:
    from floor_server import mcp as floor
    from mcp import Client

    async with Client(floor, mode="legacy") as client:
        listed = await client.list_tools()
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed.tools]


def count_titles(schema: Any) -> int:
    """``title`` keywords in a JSON schema (not properties that happen to be called "title")."""
    if isinstance(schema, list):
        return sum(count_titles(s) for s in schema)
    if not isinstance(schema, dict):
        return 0
    n = 1 if isinstance(schema.get("title"), str) else 0
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions"):
            n += sum(count_titles(v) for v in value.values())
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties", "not", "prefixItems"):
            n += count_titles(value)
    return n


def breakdown(tools: list[dict[str, Any]]) -> dict[str, int]:
    parts: dict[str, int] = {}
    for tool in tools:
        for key, value in tool.items():
            parts[key] = parts.get(key, 0) + len(json.dumps(value))
    parts["(schema titles)"] = sum(
        count_titles(t.get("inputSchema")) + count_titles(t.get("outputSchema")) for t in tools
    )
    return parts


async def measure(dump: Path | None = None) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    details: dict[str, Any] = {}
    floor = await floor_tools()
    floor_chars = len(json.dumps(floor))
    for level in LEVELS:
        tools = await tools_for(level)
        chars = len(json.dumps(tools))
        wire = len(json.dumps(tools, separators=(",", ":")))
        parts = breakdown(tools)
        # What clients that forward only name, description and input schema put in the prompt.
        visible = len(json.dumps([{k: t[k] for k in ("name", "description", "inputSchema") if k in t} for t in tools]))
        per_tool = {t["name"]: len(json.dumps(t)) for t in tools}
        details[level] = {
            "tools": len(tools),
            "chars": chars,
            "wire": wire,
            "model_visible": visible,
            "parts": parts,
            "per_tool": per_tool,
        }
        if dump:
            dump.mkdir(parents=True, exist_ok=True)
            (dump / f"tools_{level}.json").write_text(json.dumps(tools, indent=1))
        rows.append(
            Row(
                "tokens",
                f"tools/list at access={level} ({len(tools)} tools)",
                chars,
                None,
                "chars",
                None,
                "",
                None,
                f"≈{chars / 4 / 1000:.1f}k tokens; wire {wire} B; name+description+inputSchema only {visible} "
                f"(≈{visible / 4 / 1000:.1f}k tokens); output schemas {parts.get('outputSchema', 0)}, "
                f"input schemas {parts.get('inputSchema', 0)}, descriptions {parts.get('description', 0)}, "
                f"{parts['(schema titles)']} schema titles",
                details[level],
            )
        )
    details["floor"] = {"tools": len(floor), "chars": floor_chars}
    return rows, details


def run(dump: Path | None = None) -> list[Row]:
    import anyio

    return anyio.run(measure, dump)[0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dump", type=Path, help="write tools_<level>.json files here")
    args = parser.parse_args()
    rows = run(args.dump)
    print_rows(rows)
    print("per tool at access=full:")
    for name, size in sorted(rows[-1].extra["per_tool"].items(), key=lambda kv: -kv[1]):
        print(f"    {name:<24} {size:>6}")
