"""The whole agent workflow against real engines: an MCP client creates PostgreSQL and Redis through
the server, waits, connects with the saved credentials, round-trips data, deletes both, and nothing
(process, port, data directory) is left behind."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from redu_mcp.provisioning.credentials import read_env
from redu_mcp.sandbox import Sandbox
from redu_mcp.sandbox.engine_provisioner import EngineProvisioner
from redu_mcp.server import build_server
from tests.helpers import connect, create, missing_engines

pytestmark = pytest.mark.skipif(missing_engines() is not None, reason=f"engines missing: {missing_engines()}")


def _port_is_free(port: int) -> bool:
    """Nothing listens there any more (SO_REUSEADDR: connections lingering in TIME_WAIT don't count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purposes
        return stat.read().split(")")[-1].split()[0] == "Z"


async def _wait_ready(client, kind: str, id: int) -> dict:
    for _ in range(10):
        result = await client.call_tool("wait_for_ready", {"kind": kind, "id": id, "timeout_seconds": 30})
        assert not result.is_error, result.content[0].text
        if result.structured_content["ready"]:
            return result.structured_content
    raise AssertionError(f"{kind} {id} never became ready")


async def test_create_connect_round_trip_delete_leaves_nothing(make_settings, mode):
    sandbox = Sandbox(provisioner=EngineProvisioner())
    server = build_server(make_settings(engines=True), client=sandbox.client(), on_close=sandbox.aclose)
    engines_root = sandbox.store.provisioner.engines.root

    async with connect(server, mode) as client:
        db = await create(client, "database", "e2e-db", db_name="shop", db_user="shopper")
        cache = await create(client, "redis", "e2e-cache")
        db_ready = await _wait_ready(client, "database", db["instance"]["id"])
        cache_ready = await _wait_ready(client, "redis", cache["instance"]["id"])

        # The reported version is the one really running (its major, from the create's answer on); the
        # full one is a sandbox-only field, which the server does not forward (only declared fields leave it).
        detail = (await client.call_tool("get_database", {"id": db["instance"]["id"]})).structured_content
        assert "sandbox_engine_version" not in detail
        record = sandbox.store.record("database", db["instance"]["id"])
        assert record.public["sandbox_engine_version"].split(".")[0] == detail["version"] == db["instance"]["version"]
        cache_detail = (await client.call_tool("get_redis", {"id": cache["instance"]["id"]})).structured_content
        assert db_ready["connection"]["host"] == "127.0.0.1"

        pg = read_env(Path(db_ready["credentials_file"]))
        assert pg["PGHOST"] == "127.0.0.1" and pg["PGUSER"] == "shopper" and pg["PGDATABASE"] == "shop"
        async with await psycopg.AsyncConnection.connect(pg["DATABASE_URL"], connect_timeout=10) as conn:
            await conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text)")
            await conn.execute("INSERT INTO orders (item) VALUES ('coffee'), ('tea')")
            rows = await (await conn.execute("SELECT item FROM orders ORDER BY id")).fetchall()
            running = await (await conn.execute("SHOW server_version_num")).fetchone()
        assert [r[0] for r in rows] == ["coffee", "tea"]
        assert running is not None and str(int(running[0]) // 10000) == detail["version"]  # e.g. 150018 → 15

        rd = read_env(Path(cache_ready["credentials_file"]))
        redis_client = aioredis.from_url(rd["REDIS_URL"], decode_responses=True, socket_timeout=10)
        try:
            await redis_client.set("greeting", "hello")
            assert await redis_client.get("greeting") == "hello"
            running_redis = (await redis_client.info("server"))["redis_version"]
            assert str(running_redis).split(".")[0] == cache_detail["version"]
        finally:
            await redis_client.aclose()

        engines = {key: record.runtime for key, record in sandbox.store.records.items()}
        leftovers = [(e.pid, e.port, e.data_dir) for e in engines.values()]
        assert len(leftovers) == 2

        for kind, created in (("database", db), ("redis", cache)):
            deleted = await client.call_tool(
                f"delete_{kind}", {"id": created["instance"]["id"], "confirm_name": created["instance"]["name"]}
            )
            assert deleted.structured_content["deleted"] is True

        for pid, port, data_dir in leftovers:
            assert _pid_gone(pid), f"engine process {pid} still running"
            assert _port_is_free(port), f"port {port} still taken"
            assert not data_dir.exists(), f"{data_dir} left behind"

    assert not engines_root.exists(), "the sandbox's engine root must be removed when the server stops"


async def test_closing_the_server_stops_engines_that_were_never_deleted(make_settings):
    sandbox = Sandbox(provisioner=EngineProvisioner())
    server = build_server(make_settings(engines=True), client=sandbox.client(), on_close=sandbox.aclose)
    async with connect(server) as client:
        created = await create(client, "redis", "left-running")
        await _wait_ready(client, "redis", created["instance"]["id"])
        engine = next(iter(sandbox.store.records.values())).runtime
    assert _pid_gone(engine.pid)
    assert _port_is_free(engine.port)
    assert not engine.data_dir.exists()
