"""Real processes for the multi-replica tests: redis-server, the sandbox on a port, ``redu-mcp
--transport http`` replicas, and HAProxy in front of them (round robin, or sticky on
``Mcp-Session-Id``).

Every process is a child of the test process, started here and stopped (or killed) here by its own
``Popen``: nothing else on the machine is touched. Each writes its output to a file under the
test's temporary directory, so a failure can show it and a test can read it (the balancer's log
names the replica that answered each request).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.helpers import REPO, cli_command, free_port

STARTUP_TIMEOUT = 30.0  # seconds: three Python servers starting at once on a busy 2-core CI box
SANDBOX_KEY = "sandbox-key"  # redu_mcp.sandbox.DEFAULT_API_KEY
#: The header a test stamps on each request so that the balancer's log can say which replica answered it.
TRACE_HEADER = "x-test-trace"
CREATE_BODY = {"flavor_id": "1", "network_id": "net-private", "keypair_name": "default-key"}


def missing_programs() -> str | None:
    """Why the multi-replica tests cannot run here (None when haproxy and redis-server are installed)."""
    missing = [name for name in ("haproxy", "redis-server") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (.ci/install-os-packages.sh installs them)"
    return None


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"{process.args!r} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"nothing listening on port {port} after {timeout} s:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)


@dataclass
class Child:
    """A process this test started, with its output in ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, like a machine that dies."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn(name: str, command: list[str], tmp: Path, port: int, env: dict[str, str] | None = None) -> Child:
    log_path = tmp / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
        )
    return Child(name, process, log_path, port)


# --- redis-server ------------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    tmp: Path
    port: int = field(default_factory=free_port)
    password: str | None = None
    child: Child | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.tmp), "--daemonize", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        self.child = spawn(f"redis-{self.port}", command, self.tmp, self.port)
        wait_for_port(self.port, self.child.process, self.child.log_path)
        return self

    def kill(self) -> None:
        assert self.child is not None
        self.child.kill()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


# --- the sandbox on a port ----------------------------------------------------------------------------------


@dataclass
class SandboxApi:
    """``redu-mcp sandbox --port``: the upstream every replica talks to."""

    child: Child

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.child.port}/v1"

    def http(self) -> httpx2.Client:
        return httpx2.Client(base_url=f"http://127.0.0.1:{self.child.port}", headers={"x-api-key": SANDBOX_KEY})

    def create(self, name: str, kind: str = "databases") -> int:
        with self.http() as http:
            response = http.post(f"/v1/{kind}", json={"name": name, **CREATE_BODY})
            response.raise_for_status()
            return int(response.json()["id"])

    def exists(self, id: int, kind: str = "databases") -> bool:
        with self.http() as http:
            return http.get(f"/v1/{kind}/{id}").status_code == 200

    def named(self, name: str, kind: str = "databases") -> list[dict[str, Any]]:
        with self.http() as http:
            items = http.get(f"/v1/{kind}").json()["items"]
        return [item for item in items if item["name"] == name]

    def requests(self) -> list[tuple[str, str]]:
        return [(method, path) for _, method, path in self.timed_requests()]

    def timed_requests(self) -> list[tuple[float, str, str]]:
        """(arrival on the machine's monotonic clock, method, path) of every API request received."""
        with self.http() as http:
            return [(r["at"], r["method"], r["path"]) for r in http.get("/_sandbox/requests").json()]


@contextlib.contextmanager
def sandbox_api(tmp: Path, provisioning_seconds: float) -> Iterator[SandboxApi]:
    port = free_port()
    command = [*cli_command(), "sandbox", "--port", str(port), "--provisioning-seconds", str(provisioning_seconds)]
    child = spawn("sandbox", [*command, "--page-size", "500"], tmp, port)
    try:
        wait_for_port(port, child.process, child.log_path)
        yield SandboxApi(child)
    finally:
        child.stop()


# --- replicas -----------------------------------------------------------------------------------------------


@dataclass
class Deployment:
    """Replicas of one deployment, their shared settings, and the balancer in front."""

    replicas: list[Child]
    token: str | None  # the operator's bearer token (None under pass-through)
    state: Path  # XDG_STATE_HOME shared by the replicas (credentials files)
    balancer: Child | None = None
    sticky: Child | None = None  # a second frontend, sticky on Mcp-Session-Id (if asked for)

    @property
    def url(self) -> str:
        assert self.balancer is not None
        return f"http://127.0.0.1:{self.balancer.port}/mcp"

    @property
    def sticky_url(self) -> str:
        assert self.sticky is not None
        return f"http://127.0.0.1:{self.sticky.port}/mcp"

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.replicas[index].port}/mcp"

    def answered_by(self, trace: str) -> str | None:
        """Which replica (``r0``…) the balancer sent the request stamped ``trace`` to, once it logged it."""
        assert self.balancer is not None
        for log in (self.balancer, self.sticky):
            if log is None:
                continue
            for line in log.log().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "trace" and parts[1] == trace:
                    return parts[2].rsplit("/", 1)[-1]
        return None

    def wait_answered_by(self, trace: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while (server := self.answered_by(trace)) is None:
            if time.monotonic() > deadline:
                pytest.fail(f"the balancer never logged request {trace}")
            time.sleep(0.05)
        return server

    def stop(self) -> None:
        for child in [self.balancer, self.sticky, *self.replicas]:
            if child is not None:
                child.stop()


def replica_env(state: Path, **extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDU_")}
    env.update({"XDG_STATE_HOME": str(state), "REDU_MCP_LOG_LEVEL": "INFO"})
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


@contextlib.contextmanager
def deployment(
    tmp: Path,
    api: SandboxApi,
    *,
    replicas: int = 3,
    state_key: str | None = None,
    redis_url: str | None = None,
    stateless: bool = True,
    passthrough: bool = False,
    poll_interval: float = 0.3,
    balancer: bool = True,
    sticky: bool = False,
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[Deployment]:
    """``replicas`` × ``redu-mcp --transport http`` against ``api``, behind HAProxy (round robin)."""
    name = f"d{free_port()}"
    state = tmp / f"{name}-state"
    token = None if passthrough else "test-operator-token-" + secrets.token_hex(16)
    env = replica_env(
        state,
        REDU_API_KEY=None if passthrough else SANDBOX_KEY,
        REDU_MCP_AUTH_TOKEN=token,
        REDU_MCP_STATE_KEY=state_key,
        REDU_MCP_REDIS_URL=redis_url,
        REDU_MCP_STATELESS="1" if stateless else None,
        **(extra_env or {}),
    )
    children: list[Child] = []
    created = Deployment(children, token, state)
    try:
        for index in range(replicas):
            port = free_port()
            command = [*cli_command(), "--transport", "http", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--api-url", api.base, "--poll-interval", str(poll_interval), *extra_args]
            if passthrough:
                command += ["--auth", "passthrough"]
            children.append(spawn(f"{name}-r{index}", command, tmp, port, env))
        for child in children:
            wait_for_port(child.port, child.process, child.log_path)
        if balancer:
            created.balancer = haproxy(tmp, f"{name}-lb", [c.port for c in children])
        if sticky:
            created.sticky = haproxy(tmp, f"{name}-sticky", [c.port for c in children], sticky=True)
        yield created
    finally:
        created.stop()


# --- HAProxy ------------------------------------------------------------------------------------------------


def haproxy_config(port: int, upstreams: list[int], *, sticky: bool = False) -> str:
    """Round robin over ``upstreams``, with what SSE needs (long timeouts, no buffering to tune in
    HAProxy), health checks on ``/healthz`` (every 250 ms; a replica slow to answer one on a busy
    machine is not taken out: 2 s to answer, 2 failures in a row), a retry on another replica when one refuses the
    connection, and a log line per request naming the replica: ``trace <x-test-trace> <backend/server>
    <status>``. ``sticky``: a handshake-era session stays on the replica that opened it (learnt from
    the ``Mcp-Session-Id`` response header)."""
    stick = (
        """
    stick-table type string len 64 size 100k expire 30m
    stick store-response res.hdr(mcp-session-id)
    stick on req.hdr(mcp-session-id)"""
        if sticky
        else ""
    )
    servers = "\n".join(f"    server r{i} 127.0.0.1:{p} check" for i, p in enumerate(upstreams))
    return f"""global
    maxconn 4096
    log stderr format raw local0 info

defaults
    mode http
    log global
    option http-server-close
    option redispatch
    retries 2
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-request 10s
    timeout check 2s

frontend mcp
    bind 127.0.0.1:{port}
    http-request capture req.hdr({TRACE_HEADER}) len 64
    log-format "trace %[capture.req.hdr(0)] %b/%s %ST"
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 250ms fall 2 rise 2{stick}
{servers}
"""


def haproxy(tmp: Path, name: str, upstreams: list[int], *, sticky: bool = False) -> Child:
    port = free_port()
    config = tmp / f"{name}.cfg"
    config.write_text(haproxy_config(port, upstreams, sticky=sticky))
    child = spawn(name, ["haproxy", "-f", str(config), "-db"], tmp, port)
    wait_for_port(port, child.process, child.log_path)
    return child


# --- tracing requests through the balancer ------------------------------------------------------------------


class Tracer:
    """An httpx2 request hook that stamps every request with a fresh ``TRACE_HEADER`` and remembers
    what each one was: ``call:<tool>`` for a first round, ``answer:<tool>`` for a tools/call carrying
    the client's answers (the second round of a call that asked for input), else the JSON-RPC method."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (trace, what)

    async def __call__(self, request: httpx2.Request) -> None:
        trace = secrets.token_hex(6)
        what = request.method
        with contextlib.suppress(Exception):
            body = json.loads(request.content or b"{}")
            params = body.get("params") or {}
            what = str(body.get("method"))
            if what == "tools/call":
                what = ("answer:" if "inputResponses" in params else "call:") + str(params.get("name"))
        request.headers[TRACE_HEADER] = trace
        self.sent.append((trace, what))

    def traces(self, what: str) -> list[str]:
        return [trace for trace, kind in self.sent if kind == what]


def established_to(ports: list[int]) -> dict[int, int]:
    """How many established TCP connections each of ``ports`` (local listening ports) has now, from
    ``/proc/net/tcp``: which replica is serving a long request."""
    counts = dict.fromkeys(ports, 0)
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            port = int(local.rsplit(":", 1)[1], 16)
            if state == "01" and port in counts:  # 01: ESTABLISHED
                counts[port] += 1
    return counts
