"""The audit trail and ``--confirm human``, through real MCP clients.

Every create, delete and confirmation decision is one JSON line naming who, what, which instance
and how it ended, a refused or failed delete included; no line ever holds a secret, and the file
is private and never opened through a planted symlink. Under ``--confirm human`` only a person
can approve a delete, on a confirmation page: the exact name from a model is not enough.
"""

from __future__ import annotations

import gc
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp.types import ElicitResult

from redu_mcp.provisioning.audit import AuditLog, AuditRecord
from redu_mcp.provisioning.credentials import read_env
from redu_mcp.sandbox import Sandbox
from tests.confirmation_pages import PageClient, typing
from tests.helpers import CREATE_ARGS, cli_command, connect, create, seed_instance


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def answering(action: str, confirm: bool = True):
    async def answer(context: Any, params: Any) -> ElicitResult:
        return ElicitResult(action=action, content={"confirm": confirm} if action == "accept" else None)

    return answer


# --- the audit trail ------------------------------------------------------------------------------------


async def test_every_create_delete_and_decision_is_one_line(make_server, sandbox, tmp_path, mode):
    audit = tmp_path / "audit" / "redu.jsonl"
    server = make_server(audit_log=str(audit), secrets="reveal")
    typed = "Typed-Audit-Secret-1"
    async with connect(server, mode) as client:
        db = (await create(client, "database", "audited", db_password=typed))["instance"]
        revealed = await create(client, "redis", "shown")
        assert revealed["password"]  # a generated password, shown once in the result: never in the trail
        await client.call_tool("create_database", dict(CREATE_ARGS, name="audited"))  # exists already
        await client.call_tool("create_database", dict(CREATE_ARGS, name="bad", flavor_id="nope"))
        await client.call_tool("delete_database", {"id": db["id"], "confirm_name": "wrong"})  # refused
        sandbox.faults.add(method="DELETE", path=f"/v1/databases/{db['id']}", status=403)
        await client.call_tool("delete_database", {"id": db["id"], "confirm_name": "audited"})  # fails
        await client.call_tool("delete_database", {"id": db["id"], "confirm_name": "audited"})  # succeeds
        await client.call_tool("delete_database", {"id": db["id"], "confirm_name": "audited"})  # already gone
    records = lines(audit)
    outcomes = [(r["tool"], r["outcome"], r.get("detail")) for r in records]
    assert outcomes == [
        ("create_database", "created", "SavedToFile"),
        ("create_redis", "created", "Revealed"),
        ("create_database", "already_exists", None),
        ("create_database", "not_created", "rejected"),
        ("delete_database", "refused", "name_mismatch"),
        ("delete_database", "confirmed", "by confirm_name"),
        ("delete_database", "delete_failed", "PermissionDeniedError"),
        ("delete_database", "confirmed", "by confirm_name"),
        ("delete_database", "deleted", None),
        ("delete_database", "already_gone", None),
    ]
    for record in records:
        assert record["principal"] == "local" and record["kind"] in ("database", "redis")
        assert record["time"].endswith("+00:00") and record["request_id"]
    assert records[0]["id"] == db["id"] and records[0]["name"] == "audited"
    text = audit.read_text()
    assert typed not in text and revealed["password"] not in text
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600


async def test_a_person_approving_is_recorded_as_such(make_server, sandbox, tmp_path, mode):
    audit = tmp_path / "audit.jsonl"
    id = await seed_instance(sandbox, "redis", "asked")
    async with connect(make_server(audit_log=str(audit)), mode, elicitation_callback=answering("decline")) as client:
        await client.call_tool("delete_redis", {"id": id, "confirm_name": "asked"})
    async with connect(make_server(audit_log=str(audit)), mode, elicitation_callback=answering("accept")) as client:
        await client.call_tool("delete_redis", {"id": id, "confirm_name": "asked"})
    assert [(r["outcome"], r.get("detail")) for r in lines(audit)] == [
        ("refused", "declined"),
        ("confirmed", "by the user"),
        ("deleted", None),
    ]


def test_each_trail_gets_only_its_own_records(tmp_path):
    """Audit logs opened one after another in one process (servers built in turn, as a test run or an
    embedding app does): each record lands in its own trail only, never in one a closed log left behind,
    even when Python gives the new log the id of an old one."""
    trails = [tmp_path / f"audit-{n}.jsonl" for n in range(20)]
    for n, trail in enumerate(trails):
        audit = AuditLog(str(trail))
        audit.record(AuditRecord("local", "create_redis", "redis", "created", name=f"trail-{n}"))
        audit.close()
        del audit
        gc.collect()  # its id is free for the next one
    for n, trail in enumerate(trails):
        assert [record["name"] for record in lines(trail)] == [f"trail-{n}"]


def test_the_trail_is_never_written_through_a_planted_symlink(tmp_path):
    """Another user plants a link at the audit path: the server refuses to start unaudited (exit 2,
    saying why), and the link's target is untouched."""
    target = tmp_path / "someone-elses-file"
    target.write_text("precious\n")
    audit = tmp_path / "audit.jsonl"
    audit.symlink_to(target)
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), REDU_MCP_AUDIT_LOG=str(audit))
    done = subprocess.run(
        [*cli_command(), "--sandbox"], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2 and "refusing the audit log" in done.stderr and "symlink" in done.stderr
    assert target.read_text() == "precious\n"


def start_with_audit_log(tmp_path: Path, audit: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), REDU_MCP_AUDIT_LOG=str(audit))
    return subprocess.run(
        [*cli_command(), "--sandbox"], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to hand a file to another user")
def test_a_trail_pre_created_by_another_user_is_refused(tmp_path):
    """``nobody`` pre-creates the audit file, 0666, in a shared directory, to read or rewrite the
    trail later: the server refuses to start (one line, exit 2) and appends nothing."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    audit = shared / "audit.jsonl"
    audit.write_text("")
    audit.chmod(0o666)
    os.chown(audit, 65534, 65534)
    done = start_with_audit_log(tmp_path, audit)
    assert done.returncode == 2, done.stderr
    assert "refusing the audit log" in done.stderr and "belongs to another user" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert audit.read_text() == ""


@pytest.mark.parametrize("loose", ["file", "directory"])
def test_a_trail_others_may_write_or_replace_is_refused(tmp_path, loose):
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o700)
    audit = folder / "audit.jsonl"
    audit.write_text("")
    audit.chmod(0o600)
    if loose == "file":
        audit.chmod(0o620)  # group-writable
    else:
        folder.chmod(0o777)  # anyone may rename another file over it (no sticky bit)
    done = start_with_audit_log(tmp_path, audit)
    assert done.returncode == 2 and "refusing the audit log" in done.stderr, done.stderr
    assert "others may" in done.stderr and "Traceback" not in done.stderr


async def test_the_trail_can_go_to_stderr(make_server, capfd):
    async with connect(make_server(audit_log="stderr")) as client:
        await create(client, "redis", "to-stderr")
    line = next(json.loads(raw) for raw in capfd.readouterr().err.splitlines() if raw.startswith("{"))
    assert (line["tool"], line["outcome"], line["name"]) == ("create_redis", "created", "to-stderr")


# --- --confirm human ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["database", "redis"])
async def test_under_confirm_human_the_exact_name_alone_deletes_nothing(make_server, sandbox, mode, kind):
    """The attacker is a model that knows the exact name: without a person, nothing is deleted."""
    id = await seed_instance(sandbox, kind, "precious")
    async with connect(make_server(confirm="human"), mode) as client:  # a client that cannot ask
        result = await client.call_tool(f"delete_{kind}", {"id": id, "confirm_name": "precious"})
    data = result.structured_content
    assert not result.is_error and data["deleted"] is False
    assert "only a person may approve a delete (--confirm human)" in data["message"]
    assert "--confirm auto" in data["message"] and "Redu console" in data["message"]  # what the operator can do
    assert sandbox.store.exists(kind, id) and sandbox.count("DELETE") == 0


async def test_under_confirm_human_a_person_still_decides(make_server, sandbox, mode):
    """On the confirmation page the client opens (tests/test_confirmation_page.py has the attacks)."""
    id = await seed_instance(sandbox, "database", "precious")
    server = make_server(confirm="human")
    async with connect(server, mode, elicitation_callback=PageClient(action="decline")) as client:
        declined = await client.call_tool("delete_database", {"id": id})
    assert declined.structured_content["deleted"] is False and sandbox.store.exists("database", id)
    async with connect(server, mode, elicitation_callback=PageClient(person=typing("precious"))) as client:
        approved = await client.call_tool("delete_database", {"id": id})
    assert approved.structured_content["deleted"] is True and not sandbox.store.exists("database", id)


def test_a_mistyped_confirmation_mode_stops_the_server(make_settings):
    from redu_mcp.server import ConfigError

    with pytest.raises(ConfigError, match="confirmation mode"):
        make_settings(confirm="sometimes")


# --- credential files under attack ------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o277], ids=["open: others could read", "tight: the owner could not write"])
async def test_private_whatever_the_umask(make_server, credentials_dir, umask):
    old = os.umask(umask)
    try:
        async with connect(make_server()) as client:
            created = await create(client, "database", "umask-zero")
    finally:
        os.umask(old)
    path = Path(created["credentials_file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(credentials_dir.parent.stat().st_mode) == 0o700  # the parents we made, too


async def test_a_symlinked_credentials_directory_is_never_written_through(make_server, credentials_dir, tmp_path):
    elsewhere = tmp_path / "attacker-readable"
    elsewhere.mkdir()
    credentials_dir.parent.mkdir(parents=True, exist_ok=True)
    credentials_dir.symlink_to(elsewhere)
    async with connect(make_server()) as client:
        created = await create(client, "redis", "not-through-links")
    assert list(elsewhere.iterdir()) == []  # nothing written where the link points
    # The password is not lost: it is handed over once, saying why.
    assert created["password_delivery"] == "shown_once" and created["password"]
    assert "symbolic link" in created["message"]


async def test_a_symlink_planted_at_the_file_name_is_not_followed(make_server, credentials_dir, tmp_path):
    target = tmp_path / "target"
    target.write_text("untouched\n")
    credentials_dir.mkdir(parents=True)
    (credentials_dir / "database-planted-1.env").symlink_to(target)
    async with connect(make_server()) as client:
        created = await create(client, "database", "planted")
    assert target.read_text() == "untouched\n"
    assert Path(created["credentials_file"]).name == "database-planted-1-2.env"  # a new file beside it


async def test_a_value_with_a_line_break_never_adds_a_variable(make_server, sandbox: Sandbox):
    """The API sends a db_name with a line break once the instance is ready: completing the file
    would add a variable of its choosing for dotenv readers. The file is left as it was."""
    async with connect(make_server()) as client:
        created = await create(client, "database", "sneaky")
        id = created["instance"]["id"]
        sandbox.store.record("database", id).public["db_name"] = "app\nLD_PRELOAD=/tmp/evil.so"
        waited = await client.call_tool("wait_for_ready", {"kind": "database", "id": id})
    assert not waited.is_error
    values = read_env(Path(created["credentials_file"]))
    assert "LD_PRELOAD" not in values and "LD_PRELOAD" not in Path(created["credentials_file"]).read_text()
    assert values["PGDATABASE"] == "app"
