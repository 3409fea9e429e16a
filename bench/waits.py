"""Concurrent waits: 1,000 ``wait_for_ready`` calls in flight, on one server or on several replicas.

The sandbox is served by its own process (its CPU and memory are not counted), with instances that
take ``PROVISIONING`` seconds to become ready. redu-mcp serves streamable HTTP against it: one
process, or ``--replicas N`` processes (stateless, one state key) behind HAProxy in round robin,
sharing a ``redis-server`` with ``--redis``. 100 instances are created straight on the sandbox, then
1,000 ``wait_for_ready`` calls (10 per instance, 1 s poll interval, with progress) are started from
10 MCP clients, and all run until the instances are ready.

Reported: the servers' peak RSS (the largest replica), the CPU seconds they spent during the waits
(all replicas together), and the upstream GETs each instance received per poll interval once all
waits were in flight (steady state), read from the sandbox's request log (``GET /_sandbox/requests``).
Ten waiters on one instance should cost one GET per interval: in one process thanks to the status
board (``redu_mcp.provisioning.waiting``); across replicas only with Redis
(``redu_mcp.provisioning.shared_board``): without it each replica polls (≈ N per interval).

    uv run python bench/waits.py [--instances 100] [--per-instance 10] [--replicas 3] [--redis]
    uv run python bench/waits.py --matrix     # 1 and 3 replicas, with and without Redis
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import secrets
import time
from collections.abc import Iterator

from common import (
    AUTH,
    HOST,
    OURS_STDIO,
    SANDBOX_KEY,
    Row,
    child_env,
    cpu_seconds,
    free_port,
    haproxy_round_robin,
    percentile,
    print_rows,
    redis_on_port,
    rss_kib,
    sandbox_on_port,
    serving,
)

PROVISIONING = 25.0  # seconds until a sandbox instance is ready: long enough for all waits to be in flight
INTERVAL = 1.0  # poll interval the waits ask for
TARGET_GETS = 1.1  # upstream GETs per instance per poll interval in steady state (ideal: 1)
CLIENTS = 10
NO_PROGRESS_SETTLE = 8.0  # seconds after which the waits count as in flight with --no-progress
CALL_TIMEOUT = 90.0


def _instance_gets(log: list[dict], ids: list[int]) -> list[int]:
    gets = collections.Counter(r["path"] for r in log if r["method"] == "GET")
    return [gets.get(f"/v1/databases/{i}", 0) for i in ids]


@contextlib.contextmanager
def servers(base: str, replicas: int, redis_url: str | None) -> Iterator[tuple[str, list[int]]]:
    """``replicas`` redu-mcp HTTP servers on the sandbox at ``base`` (behind HAProxy if more than
    one); yields the URL clients use and the servers' pids."""
    env = child_env(REDU_API_KEY=SANDBOX_KEY, REDU_MCP_STATE_KEY=secrets.token_hex(32))
    if replicas > 1:
        env["REDU_MCP_STATELESS"] = "1"
    if redis_url:
        env["REDU_MCP_REDIS_URL"] = redis_url
    with contextlib.ExitStack() as stack:
        ports, pids = [], []
        for _ in range(replicas):
            port = free_port()
            cmd = [*OURS_STDIO, "--transport", "http", "--host", HOST, "--port", str(port), "--api-url", base]
            proc = stack.enter_context(serving([*cmd, "--poll-interval", str(INTERVAL)], port, env=env))
            ports.append(port)
            pids.append(proc.pid)
        front = stack.enter_context(haproxy_round_robin(ports)) if replicas > 1 else ports[0]
        yield f"http://{HOST}:{front}/mcp", pids


async def measure(
    instances: int, per_instance: int, progress: bool = True, replicas: int = 1, redis: bool = False
) -> list[Row]:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    waits = instances * per_instance
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(sandbox_on_port(provisioning_seconds=PROVISIONING))
        redis_url = stack.enter_context(redis_on_port()) if redis else None
        control = base.removesuffix("/v1") + "/_sandbox/requests"
        url, pids = stack.enter_context(servers(base, replicas, redis_url))
        async with httpx2.AsyncClient(base_url=base + "/", headers={"x-api-key": SANDBOX_KEY}, timeout=30) as api:
            async with (
                httpx2.AsyncClient(timeout=30, headers=AUTH) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                warm = await client.call_tool("list_create_options", {})  # first-call imports, client pool
                assert not warm.is_error, warm.content
            ids = []
            for n in range(instances):
                created = await api.post(
                    "databases",
                    json={
                        "name": f"wait-{n}",
                        "flavor_id": "1",
                        "network_id": "net-private",
                        "keypair_name": "default-key",
                    },
                )
                created.raise_for_status()
                ids.append(created.json()["id"])
            ready_at = time.monotonic() + PROVISIONING  # ± the creation loop
            (await api.delete(control)).raise_for_status()

            rss_before = max(rss_kib(pid) for pid in pids)
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            started = time.monotonic()
            in_flight = 0
            all_in_flight = anyio.Event()
            results: list[dict] = []
            finished: list[float] = []
            failures: list[str] = []

            async def one_client(my_ids: list[int]) -> None:
                n_calls = len(my_ids) * per_instance
                limits = httpx2.Limits(max_connections=n_calls + 8, max_keepalive_connections=n_calls + 8)
                async with (
                    httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(CALL_TIMEOUT), headers=AUTH) as http,
                    Client(streamable_http_client(url, http_client=http), read_timeout_seconds=CALL_TIMEOUT) as client,
                ):

                    async def wait(db_id: int) -> None:
                        seen = False

                        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                            nonlocal seen, in_flight
                            if not seen:
                                seen = True
                                in_flight += 1
                                if in_flight == waits:
                                    all_in_flight.set()

                        result = await client.call_tool(
                            "wait_for_ready",
                            {
                                "kind": "database",
                                "id": db_id,
                                "timeout_seconds": 45,
                            },
                            progress_callback=on_progress if progress else None,
                        )
                        if result.is_error or not (result.structured_content or {}).get("ready"):
                            failures.append(str(result.content[0].text if result.content else result)[:200])
                        else:
                            results.append(result.structured_content)
                            finished.append(time.monotonic() - started)

                    async with anyio.create_task_group() as tg:
                        for db_id in my_ids:
                            for _ in range(per_instance):
                                tg.start_soon(wait, db_id)

            steady: dict[str, float] = {}

            async def observe_steady_state() -> None:
                """GETs counted from when every wait is in flight until just before the instances are ready."""
                if progress:
                    await all_in_flight.wait()
                else:  # no progress to tell when a call is in flight: give them time
                    await anyio.sleep(NO_PROGRESS_SETTLE)
                steady["from"] = time.monotonic()
                steady["gets_from"] = sum(_instance_gets((await api.get(control)).json(), ids))
                await anyio.sleep(max(0.0, ready_at - time.monotonic() - 1.5))
                steady["to"] = time.monotonic()
                steady["gets_to"] = sum(_instance_gets((await api.get(control)).json(), ids))

            with anyio.fail_after(CALL_TIMEOUT * 2):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(observe_steady_state)
                    share = max(1, instances // CLIENTS)
                    for k in range(0, instances, share):
                        tg.start_soon(one_client, ids[k : k + share])
            elapsed = time.monotonic() - started
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
            peak_rss = max(rss_kib(pid, peak=True) for pid in pids)
            rss_after = max(rss_kib(pid) for pid in pids)
            per_instance_gets = _instance_gets((await api.get(control)).json(), ids)

    waited = [r["waited_seconds"] for r in results]
    steady_s = steady["to"] - steady["from"]
    steady_gets = steady["gets_to"] - steady["gets_from"]
    gets_per_interval = steady_gets / len(ids) / (steady_s / INTERVAL)
    overall = sum(per_instance_gets) / len(ids) / (max(waited) / INTERVAL)
    in_flight_after = steady["from"] - started
    setup = f"{replicas} replica{'s' if replicas > 1 else ''}, {'with' if redis else 'without'} Redis"
    shared = replicas == 1 or redis
    detail = {
        "setup": setup,
        "waits": waits,
        "ok": len(results),
        "failed": len(failures),
        "elapsed_s": round(elapsed, 2),
        "all_in_flight_after_s": round(in_flight_after, 2),
        "steady_window_s": round(steady_s, 2),
        "steady_gets": steady_gets,
        "gets_total": sum(per_instance_gets),
        "gets_per_instance": [min(per_instance_gets), max(per_instance_gets)],
        "overall_gets_per_interval": round(overall, 3),
        "finished_s": [round(min(finished), 2), round(percentile(finished, 50), 2), round(max(finished), 2)],
        "server_waited_s": [min(waited), max(waited)],
        "cpu_s": round(cpu, 2),
        "peak_rss_kib": peak_rss,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "failures": failures[:3],
    }
    gets_row = Row(
        "waits" if replicas == 1 and not redis else "replicas",
        "  upstream GETs per instance per poll interval"
        if replicas == 1 and not redis
        else f"{setup}: GETs per instance per interval",
        gets_per_interval,
        None,
        "GETs",
        gets_per_interval,
        f"≤ {TARGET_GETS} (ideal 1)" if shared else f"≈ {replicas} (control: each polls)",
        (gets_per_interval <= TARGET_GETS and not failures) if shared else None,
        f"steady state, {steady_s:.1f} s with all {waits} in flight (from {in_flight_after:.1f} s); whole run: "
        f"{sum(per_instance_gets)} GETs, {overall:.2f} per instance per interval incl. arrivals "
        f"(unshared: {per_instance}); {len(results)}/{waits} ready; servers' CPU {cpu:.1f} s",
        detail,
    )
    if replicas > 1 or redis:
        return [gets_row]
    return [
        Row(
            "waits",
            f"{waits} concurrent wait_for_ready: server peak RSS",
            peak_rss / 1024,
            None,
            "MiB",
            None,
            "",
            None,
            f"{rss_before / 1024:.0f} MiB before the waits, {rss_after / 1024:.0f} after; "
            f"{(peak_rss - rss_before) / waits:.0f} KiB per wait",
            detail,
        ),
        Row(
            "waits",
            "  server CPU seconds during the waits",
            cpu,
            None,
            "s",
            None,
            "",
            None,
            f"{len(results)}/{waits} ready after {elapsed:.1f} s ({PROVISIONING:g} s provisioning); "
            f"{instances} instances × {per_instance} waiters, {INTERVAL:g} s interval, with progress",
        ),
        gets_row,
    ]


def run(
    instances: int = 100, per_instance: int = 10, progress: bool = True, replicas: int = 1, redis: bool = False
) -> list[Row]:
    import anyio

    return anyio.run(measure, instances, per_instance, progress, replicas, redis)


#: The configurations of the multi-replica figure: (replicas, Redis).
MATRIX = ((1, False), (1, True), (3, False), (3, True))


def run_matrix(instances: int = 100, per_instance: int = 10) -> list[Row]:
    """The GETs figure at 1 and 3 replicas, with and without Redis."""
    rows = []
    for replicas, redis in MATRIX:
        row = run(instances, per_instance, True, replicas, redis)[-1]
        rows.append(
            dataclasses.replace(row, bench="replicas", measure=f"{row.extra['setup']}: GETs per instance per interval")
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--per-instance", type=int, default=10)
    parser.add_argument("--no-progress", action="store_true", help="call without a progress token (diagnosis)")
    parser.add_argument("--replicas", type=int, default=1, help="servers behind HAProxy in round robin")
    parser.add_argument("--redis", action="store_true", help="the servers share a redis-server")
    parser.add_argument("--matrix", action="store_true", help="1 and 3 replicas, with and without Redis")
    args = parser.parse_args()
    if args.matrix:
        rows = run_matrix(args.instances, args.per_instance)
    else:
        rows = run(args.instances, args.per_instance, not args.no_progress, args.replicas, args.redis)
    print_rows(rows)
    print(rows[0].extra)
