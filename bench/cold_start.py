"""Cold start: spawn → first ``tools/list`` answered over stdio, ours vs the floor server.

Raw JSON-RPC over the child's pipes, the way a desktop client starts a server: ``initialize``, wait
for its answer, ``notifications/initialized`` + ``tools/list``, stop the clock at the answer. Runs
alternate (floor, ours, floor, ours, ...) after one unmeasured warm-up each, so drift in machine
load hits both alike. The page cache and ``.pyc`` files are warm: this is the start-up a user feels
every time their client launches the server, not the very first one after install.

    uv run python bench/cold_start.py [--runs 12]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import time

from common import FLOOR_STDIO, OURS_STDIO, ROOT, Row, child_env, median, print_rows, stop

TARGET = 1.15
TIMEOUT = 60.0

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "redu-bench", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}


def _send(proc: subprocess.Popen, *messages: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
    proc.stdin.flush()


def _read_response(proc: subprocess.Popen, want_id: int, buffer: bytearray, deadline: float) -> dict:
    """The JSON-RPC response with ``want_id`` (skipping notifications), within the deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                if line.strip():
                    message = json.loads(line)
                    if message.get("id") == want_id:
                        return message
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise TimeoutError(f"no answer to request {want_id} from {proc.args!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{proc.args!r} closed stdout (exit {proc.poll()})")
            buffer += chunk


def time_to_tools_list(cmd: list[str]) -> tuple[float, int]:
    """Seconds from spawn to the ``tools/list`` answer, and how many tools it listed."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env(), cwd=ROOT
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        buffer = bytearray()
        _send(proc, INITIALIZE)
        init = _read_response(proc, 1, buffer, deadline)
        assert "result" in init, init
        _send(proc, INITIALIZED, LIST_TOOLS)
        listed = _read_response(proc, 2, buffer, deadline)
        elapsed = time.perf_counter() - started
        assert "result" in listed, listed
        return elapsed, len(listed["result"]["tools"])
    finally:
        if proc.stdin:
            proc.stdin.close()  # end of input: the server exits on its own
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            stop(proc)
        if proc.stdout:
            proc.stdout.close()


def run(runs: int = 12, ours_args: tuple[str, ...] = ("--sandbox",)) -> list[Row]:
    ours_cmd = [*OURS_STDIO, *ours_args]
    time_to_tools_list(FLOOR_STDIO)  # warm-up: page cache, .pyc files
    time_to_tools_list(ours_cmd)
    floor_times: list[float] = []
    ours_times: list[float] = []
    tools = 0
    for _ in range(runs):
        floor_times.append(time_to_tools_list(FLOOR_STDIO)[0])
        elapsed, tools = time_to_tools_list(ours_cmd)
        ours_times.append(elapsed)
    ours, floor = median(ours_times) * 1000, median(floor_times) * 1000
    ratio = ours / floor
    return [
        Row(
            "cold_start",
            f"spawn→tools/list, stdio (median of {runs})",
            ours,
            floor,
            "ms",
            ratio,
            f"≤ {TARGET}× floor",
            ratio <= TARGET,
            f"{' '.join(['python -m redu_mcp', *ours_args])}, {tools} tools; "
            f"ours {min(ours_times) * 1000:.0f}–{max(ours_times) * 1000:.0f} ms, "
            f"floor {min(floor_times) * 1000:.0f}–{max(floor_times) * 1000:.0f} ms",
            {
                "ours_ms": [round(t * 1000, 1) for t in ours_times],
                "floor_ms": [round(t * 1000, 1) for t in floor_times],
            },
        )
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=12)
    print_rows(run(parser.parse_args().runs))
