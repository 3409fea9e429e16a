"""Shared plumbing for the benchmarks: child processes, ports, statistics, result rows.

Only loopback addresses are used. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
HOST = "127.0.0.1"
SANDBOX_KEY = "sandbox-key"  # redu_mcp.sandbox.DEFAULT_API_KEY (not imported: keep this module light)

OURS_STDIO = [PY, "-m", "redu_mcp"]
#: The bearer token HTTP servers under test require (HTTP always wants one: see child_env).
BENCH_TOKEN = "bench-token-not-a-secret-0123456789"
AUTH = {"Authorization": f"Bearer {BENCH_TOKEN}"}
FLOOR_STDIO = [PY, str(BENCH / "floor_server.py")]


@dataclass
class Row:
    """One line of the results table: a measure for ours and for its floor, and the verdict."""

    bench: str
    measure: str
    ours: float | None
    floor: float | None = None
    unit: str = ""
    ratio: float | None = None  # how the target is judged (see `target`)
    target: str = ""
    ok: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


_STATE_DIR = tempfile.mkdtemp(prefix="redu-bench-state-")


def child_env(**extra: str) -> dict[str, str]:
    """A small, explicit environment for servers, like a desktop client gives them.

    ``PYTHONDONTWRITEBYTECODE`` is deliberately absent: a real install reuses its ``.pyc`` files, and
    credentials never land in the real home directory.
    """
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TERM", "USER") if k in os.environ}
    env["XDG_STATE_HOME"] = _STATE_DIR
    env["REDU_MCP_AUTH_TOKEN"] = BENCH_TOKEN  # our HTTP server requires it; clients send AUTH (the floor ignores it)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL if it does not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@contextlib.contextmanager
def serving(cmd: Sequence[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Run an HTTP server child until the block ends; yields once its port accepts connections."""
    proc = subprocess.Popen(
        list(cmd),
        env=env or child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def sandbox_on_port(provisioning_seconds: float = 3.0) -> Iterator[str]:
    """The Redu API emulator served by its own process; yields its base URL (``.../v1``)."""
    port = free_port()
    cmd = [
        PY,
        "-m",
        "redu_mcp.sandbox.serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--provisioning-seconds",
        str(provisioning_seconds),
        "--page-size",
        "500",
    ]
    with serving(cmd, port):
        yield f"http://{HOST}:{port}/v1"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_kib(pid: int, peak: bool = False) -> int:
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        from importlib.metadata import version

        mcp_version = version("mcp")
    except Exception:
        mcp_version = "?"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "mcp": mcp_version,
        "os": f"{platform.system()} {platform.release()}",
    }


def print_rows(rows: Sequence[Row]) -> None:
    for row in rows:
        print(format_row(row))


def format_row(row: Row) -> str:
    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.4g}"

    verdict = "" if row.ok is None else ("ok" if row.ok else "MISSED")
    return (
        f"{row.bench:<12} {row.measure:<44} ours={num(row.ours)} floor={num(row.floor)} {row.unit} "
        f"ratio={num(row.ratio)} target {row.target} {verdict} {row.note}"
    )


# --- several replicas: redis-server and HAProxy, started and stopped here -----------------------------------


@contextlib.contextmanager
def redis_on_port() -> Iterator[str]:
    """A throw-away ``redis-server`` (no persistence) on a free port; yields its URL."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="redu-bench-redis-")
    cmd = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    with serving([*cmd, "--dir", workdir, "--daemonize", "no"], port):
        yield f"redis://{HOST}:{port}/0"


@contextlib.contextmanager
def haproxy_round_robin(upstreams: Sequence[int]) -> Iterator[int]:
    """HAProxy in round robin over ``upstreams`` (health-checked on /healthz); yields its port."""
    port = free_port()
    servers = "\n".join(f"    server r{i} {HOST}:{p} check" for i, p in enumerate(upstreams))
    config = f"""global
    maxconn 4096
defaults
    mode http
    option http-server-close
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout http-request 10s
frontend mcp
    bind {HOST}:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 1s
{servers}
"""
    path = Path(tempfile.mkdtemp(prefix="redu-bench-haproxy-")) / "haproxy.cfg"
    path.write_text(config)
    with serving(["haproxy", "-f", str(path), "-db"], port):
        yield port


async def median_ms(call: Callable[[], Awaitable[object]], samples: int) -> float:
    """The median wall time of ``samples`` awaited calls, in milliseconds."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
