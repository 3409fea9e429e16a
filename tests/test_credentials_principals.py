"""Credentials belong to a principal and to one instance: the attacker shares an id, a name, a replica.

Two pass-through users whose API gives each an instance with id 1 (two sandboxes behind one
address, routed by API key: ids are per account there, as on an API whose ids collide), served by
two replicas sharing one credentials root (and Redis, and the state key). Alice's file is never
named, opened, read or rewritten for Bob, whichever replica serves whom. Then the store alone: the
read API (``lookup``) answers only for the same principal, kind, id, name and ``created_at``.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from redu_mcp.api import DATABASE, Database, ReduClient
from redu_mcp.provisioning import credentials as credentials_module
from redu_mcp.provisioning.credentials import CredentialStore, NoCredentials, StoredPassword, read_env
from redu_mcp.sandbox import SANDBOX_BASE_URL, Account, Sandbox
from redu_mcp.server.http import build_http_app
from redu_mcp.server.settings import Settings
from tests.helpers import ALICE, BOB, CREATE_ARGS, http_client, listening_socket, serving_asgi
from tests.replicas import RedisServer

KEY = secrets.token_hex(32)


class ByKey(httpx2.AsyncBaseTransport):
    """One API address, two accounts with their own id counters: requests go to the sandbox of their key."""

    def __init__(self, sandboxes: dict[str, Sandbox]) -> None:
        self.transports = {key: sandbox.transport() for key, sandbox in sandboxes.items()}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        transport = self.transports.get(request.headers.get("x-api-key", ""))
        if transport is None:
            return httpx2.Response(401, json={"error": {"code": "unauthorized", "message": "unknown key"}})
        return await transport.handle_async_request(request)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer | None]:
    if shutil.which("redis-server") is None:
        yield None
        return
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def replica(root: Path, api: ByKey, redis: RedisServer | None) -> AsyncIterator[str]:
    sock = listening_socket()
    settings = Settings(
        transport="http",
        auth_passthrough=True,
        credentials_dir=root,
        port=sock.getsockname()[1],
        poll_interval_seconds=0.05,
        state_keys=(KEY,),
        redis_url=redis.url if redis is not None else None,
    )
    client = ReduClient(None, base_url=SANDBOX_BASE_URL, transport=api)
    app, _ = build_http_app(settings, client=client)
    async with serving_asgi(app, sock) as port:
        yield f"http://127.0.0.1:{port}{settings.path}"


class Opened:
    """Every credentials folder the store opens, so a test can say whose were touched when."""

    def __init__(self) -> None:
        self.folders: list[Path] = []

    def __call__(self, folder: Path) -> Any:
        self.folders.append(folder)
        return self.real(folder)

    real = staticmethod(credentials_module._open)


async def call(url: str, key: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with http_client(url, bearer=key) as client:
        result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_colliding_ids_of_two_users_on_two_replicas_never_cross(tmp_path: Path, redis, monkeypatch):
    alice_api = Sandbox(api_keys={ALICE: Account("usr_alice", "alice", "a@example.com")}, provisioning_seconds=0.2)
    bob_api = Sandbox(api_keys={BOB: Account("usr_bob", "bob", "b@example.com")}, provisioning_seconds=0.2)
    api = ByKey({ALICE: alice_api, BOB: bob_api})
    root = tmp_path / "credentials"
    opened = Opened()
    monkeypatch.setattr(credentials_module, "_open", opened)
    async with replica(root, api, redis) as first, replica(root, api, redis) as second:
        alice = await call(first, ALICE, "create_database", dict(CREATE_ARGS, name="app-db"))
        bob = await call(second, BOB, "create_database", dict(CREATE_ARGS, name="app-db"))
        assert alice["instance"]["id"] == bob["instance"]["id"] == 1  # the same id, the same name
        alice_file, bob_file = Path(alice["credentials_file"]), Path(bob["credentials_file"])
        assert alice_file.parent != bob_file.parent and alice_file.name == bob_file.name
        alice_folder = alice_file.parent
        alice_before = alice_file.read_bytes()

        # Bob waits on the replica that created Alice's file, then on the other one; and looks it up.
        opened.folders.clear()
        for url in (first, second):
            ready = await call(url, BOB, "wait_for_ready", {"kind": "database", "id": 1, "timeout_seconds": 10})
            assert ready["ready"] and ready["credentials_file"] == str(bob_file)
            got = await call(url, BOB, "get_database", {"id": 1})
            assert str(alice_folder) not in str(got) and str(alice_folder) not in str(ready)
        assert alice_folder not in opened.folders  # Alice's folder was not even opened for Bob
        assert alice_file.read_bytes() == alice_before  # nor rewritten

        # Alice's own wait, on the replica that never saw her create, completes her file.
        ready = await call(second, ALICE, "wait_for_ready", {"kind": "database", "id": 1, "timeout_seconds": 10})
        assert ready["credentials_file"] == str(alice_file)
    alice_env, bob_env = read_env(alice_file), read_env(bob_file)
    assert alice_env["PGPASSWORD"] != bob_env["PGPASSWORD"]  # each kept their own (the API keeps none)
    assert alice_env["PGHOST"] and bob_env["PGHOST"]
    assert alice_env["PGHOST"] == alice_api.store.record("database", 1).public["floating_ip"]
    assert bob_env["PGHOST"] == bob_api.store.record("database", 1).public["floating_ip"]
    assert sorted(p.name for p in root.iterdir()) == ["users"]  # nothing for anyone in the shared root


# --- the store alone: the read API --------------------------------------------------------------------


def instance(**changes: Any) -> Database:
    base = Database(
        id=1,
        name="orders",
        status="ready",
        floating_ip="203.0.113.5",
        port=5432,
        db_user="u",
        created_at="2026-05-30T12:00:00Z",
    )
    return base.model_copy(update=changes)


def test_a_file_is_used_only_for_the_same_principal_and_instance(tmp_path: Path):
    store = CredentialStore(tmp_path)
    path = store.save("user:alice", DATABASE, instance(), "pw-alice-0123456789")
    assert store.lookup("user:alice", DATABASE, instance()) == StoredPassword("pw-alice-0123456789", path)
    for principal, other in [
        ("user:bob", instance()),  # another user, same instance id
        ("operator", instance()),
        ("local", instance()),
        ("user:alice", instance(created_at="2026-06-01T00:00:00Z")),  # the id was reused
        ("user:alice", instance(name="orders-2")),  # renamed, or another instance
    ]:
        answer = store.lookup(principal, DATABASE, other)
        assert isinstance(answer, NoCredentials), (principal, other)
        assert answer.reason in ("missing", "other_instance")
        assert "pw-alice" not in str(answer)
    # A file copied by hand into Bob's folder still names Alice: refused, and Bob is told where his goes.
    bob_folder = store.directory("user:bob")
    bob_folder.mkdir(parents=True, mode=0o700)
    (bob_folder / path.name).write_bytes(path.read_bytes())
    (bob_folder / path.name).chmod(0o600)
    refused = store.lookup("user:bob", DATABASE, instance())
    assert isinstance(refused, NoCredentials) and refused.reason == "other_instance"
    assert refused.expected == bob_folder / "database-orders-1.env"


def test_users_never_share_a_folder_even_when_their_ids_look_alike(tmp_path: Path):
    store = CredentialStore(tmp_path)
    folders = {store.directory(p) for p in ("user:usr_1", "user:usr-1", "user:usr/1", "user:../usr_1", "operator")}
    assert len(folders) == 5 and all(tmp_path in f.parents for f in folders)
    assert all(".." not in f.parts for f in folders)


def test_a_file_others_can_read_is_refused_with_where_to_put_one(tmp_path: Path):
    store = CredentialStore(tmp_path)
    path = store.save("local", DATABASE, instance(), "pw-local-0123456789")
    path.chmod(0o644)
    refused = store.lookup("local", DATABASE, instance())
    assert isinstance(refused, NoCredentials) and refused.reason == "not_private"
    assert refused.expected == tmp_path / "database-orders-1.env"
    assert "pw-local" not in str(refused)


def test_a_hand_written_file_in_the_documented_format_is_used(tmp_path: Path):
    """docs/security-trust.md says how to place a file by hand: this is that example."""
    folder = tmp_path
    (folder / "database-orders-1.env").write_text(
        "# redu-mcp-instance: "
        '{"principal": "local", "kind": "database", "id": 1, "name": "orders", "created_at": "2026-05-30T12:00:00Z"}\n'
        "PGPASSWORD=typed-by-hand-0123\n"
    )
    (folder / "database-orders-1.env").chmod(0o600)
    found = CredentialStore(tmp_path).lookup("local", DATABASE, instance())
    assert isinstance(found, StoredPassword) and found.password == "typed-by-hand-0123"
