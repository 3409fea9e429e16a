"""A snapshot of the exact ``tools/list`` wire output: names, titles, descriptions, input and output
schemas, annotations. Every tool description and schema is part of the prompt of every model that
uses this server, so a change to any of them must be deliberate and visible in review.

On drift the test fails with a diff. If the change is intended, rewrite the snapshot with::

    UPDATE_SNAPSHOTS=1 uv run pytest tests/test_tools_snapshot.py

and commit ``tests/snapshots/tools_list.json`` with the change. The test also prints the size of
the listing (total and per tool), since it costs context on every conversation.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from redu_mcp.server import tools_for
from tests.helpers import connect

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"
UPDATE_ENV = "UPDATE_SNAPSHOTS"


def render(listing: dict[str, Any]) -> str:
    """The deterministic text form of a tools/list result."""
    return json.dumps(listing, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def wire_size(value: Any) -> int:
    """Characters of ``value`` as compact JSON, the way it travels on the wire."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


async def tools_list(server: Any, mode: str) -> dict[str, Any]:
    async with connect(server, mode) as client:
        result = await client.list_tools()
    assert result.next_cursor is None  # one page: the snapshot is the whole listing
    # Only the tools: the envelope carries per-era fields (ttlMs, cacheScope, serverInfo in _meta).
    return {"tools": result.model_dump(mode="json", by_alias=True, exclude_none=True)["tools"]}


def size_report(listing: dict[str, Any]) -> str:
    tools = sorted(listing["tools"], key=wire_size, reverse=True)
    total = wire_size(listing)
    shares = ", ".join(
        f"{key}s {sum(wire_size(t[key]) for t in tools if key in t)}"
        for key in ("description", "inputSchema", "outputSchema")
    )
    lines = [f"tools/list size: {total} chars as compact JSON ({len(tools)} tools; {shares}); per tool:"]
    for tool in tools:
        parts = ", ".join(
            f"{key} {wire_size(tool[key])}" for key in ("description", "inputSchema", "outputSchema") if key in tool
        )
        lines.append(f"  {tool['name']:<22} {wire_size(tool):>6}  ({parts})")
    return "\n".join(lines)


async def test_tools_list_matches_the_snapshot(server, capsys: pytest.CaptureFixture[str]):
    legacy = await tools_list(server, "legacy")
    modern = await tools_list(server, "auto")
    assert modern == legacy, "both protocol eras must list the same tools"

    with capsys.disabled():
        print("\n" + size_report(legacy))

    actual = render(legacy)
    if os.environ.get(UPDATE_ENV):
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(actual)
        pytest.skip(f"{UPDATE_ENV} is set: rewrote {SNAPSHOT}")
    assert SNAPSHOT.exists(), f"no snapshot yet: create it with {UPDATE_ENV}=1 uv run pytest {__file__}"
    expected = SNAPSHOT.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{SNAPSHOT.name} (snapshot)",
                tofile="tools/list (server now)",
                n=2,
            )
        )
        pytest.fail(
            "tools/list differs from the snapshot. If the change is intended, update it with\n"
            f"    {UPDATE_ENV}=1 uv run pytest tests/test_tools_snapshot.py\n"
            f"and commit {SNAPSHOT.relative_to(Path(__file__).parent.parent)}.\n\n{diff}",
            pytrace=False,
        )


def test_snapshot_is_deterministic_json():
    """The committed snapshot is in the exact form ``render`` writes (sorted keys, two-space indent)."""
    if not SNAPSHOT.exists():
        pytest.skip("no snapshot yet")
    text = SNAPSHOT.read_text()
    listing = json.loads(text)
    assert render(listing) == text
    names = [tool["name"] for tool in listing["tools"]]
    assert len(names) == len(set(names)) == len(tools_for("full"))
