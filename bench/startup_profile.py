"""Where ours spends its start-up beyond the floor: imports, building the server, the first tools/list.

Each sample is a fresh interpreter that times, in process: the SDK import the floor also pays, then
our extra imports, ``build_server`` (registering 11 tools makes the SDK generate their schemas), and
the first ``tools/list`` (building and serialising the listing). With ``--importtime`` it also lists
the modules ours imports that the floor does not, from ``python -X importtime``.

    uv run python bench/startup_profile.py [--samples 5] [--importtime]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from common import FLOOR_STDIO, PY, ROOT, Row, child_env, print_rows

SPLIT = r"""
import json, time
t0 = time.perf_counter()
from mcp.server.mcpserver import MCPServer
t1 = time.perf_counter()
import redu_mcp.cli
from redu_mcp.server import Settings
from redu_mcp.server import build_server
from redu_mcp.sandbox import Sandbox
upstream = Sandbox().client()  # not timed: the command line builds it only for --sandbox
t2 = time.perf_counter()
server = build_server(Settings(sandbox=True), client=upstream)
t3 = time.perf_counter()
import anyio
from mcp.types import ListToolsResult
async def listing():
    return ListToolsResult(tools=await server.list_tools()).model_dump_json(by_alias=True, exclude_none=True)
anyio.run(listing)
t4 = time.perf_counter()
print(json.dumps({"sdk_import": t1 - t0, "our_imports": t2 - t1, "build_server": t3 - t2, "first_tools_list": t4 - t3}))
"""


def split(samples: int) -> dict[str, float]:
    runs = []
    for _ in range(samples):
        out = subprocess.run(
            [PY, "-c", SPLIT], env=child_env(), cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in runs) * 1000 for key in runs[0]}


def _importtime(cmd: list[str]) -> dict[str, int]:
    """Module → self import time (µs) while ``cmd`` imports and exits (stdin closed: no session)."""
    out = subprocess.run(
        [PY, "-X", "importtime", *cmd[1:]],
        env=child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    modules = {}
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, _, name = line.split(":", 1)[1].split("|")
            modules[name.strip()] = int(self_us)
    return modules


def extra_modules() -> list[tuple[str, int]]:
    ours = _importtime([PY, "-m", "redu_mcp", "--sandbox"])
    floor = _importtime(FLOOR_STDIO)
    return sorted(((m, t) for m, t in ours.items() if m not in floor), key=lambda mt: -mt[1])


def run(samples: int = 5, importtime: bool = False) -> list[Row]:
    ms = split(samples)
    ours_extra = ms["our_imports"] + ms["build_server"] + ms["first_tools_list"]
    rows = [
        Row(
            "startup",
            "SDK import (floor pays it too)",
            ms["sdk_import"],
            None,
            "ms",
            None,
            "",
            None,
            f"median of {samples} fresh interpreters",
        ),
        Row("startup", "  + our imports (cli, config, server, tools...)", ms["our_imports"], None, "ms"),
        Row("startup", "  + build_server (11 tools: SDK schema generation)", ms["build_server"], None, "ms"),
        Row(
            "startup",
            "  + first tools/list (build + serialise)",
            ms["first_tools_list"],
            None,
            "ms",
            None,
            "",
            None,
            f"ours adds ≈ {ours_extra:.0f} ms in process",
        ),
    ]
    if importtime:
        extra = extra_modules()
        rows.append(
            Row(
                "startup",
                f"  modules only ours imports ({len(extra)})",
                sum(t for _, t in extra) / 1000,
                None,
                "ms",
                None,
                "",
                None,
                ", ".join(f"{m} {t / 1000:.1f}" for m, t in extra[:8]),
            )
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    print_rows(run(args.samples, args.importtime))
