"""Windows and macOS without those machines: the server under a Windows-like ``os`` and a macOS-like
platform name (``tests/windows_like.py`` says what is taken away and what cannot be faked).

Under the Windows-like ``os``, the whole create → wait → delete flow runs over stdio (a child process
with the fixture installed before anything is imported) and in this process: the password ends in a
private file, or is shown once with the reason, never lost. The local HTTP token and the audit log
work there too, and refuse a planted link. A macOS-like platform gets its own default folders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from redu_mcp.provisioning.audit import AuditLog, AuditRecord
from redu_mcp.provisioning.credentials import read_env
from redu_mcp.server import Settings, build_server
from redu_mcp.server.http._local_token import TOKEN_FILE_NAME, load_or_create_token
from redu_mcp.server.settings import ConfigError
from tests import windows_like
from tests.helpers import CREATE_ARGS, REPO, connect


def profile(tmp_path: Path) -> tuple[Path, Path]:
    """A user profile (HOME) and its local application data folder, as on Windows."""
    home = tmp_path / "Users" / "someone"
    local = home / "AppData" / "Local"
    local.mkdir(parents=True)
    return home, local


async def flow(client: Client, name: str) -> dict[str, Any]:
    """create → wait → delete; what each answered, and the credentials file as it was before the delete
    (which removes it)."""
    created = (await client.call_tool("create_database", dict(CREATE_ARGS, name=name))).structured_content
    id = created["instance"]["id"]
    ready = await client.call_tool("wait_for_ready", {"kind": "database", "id": id, "timeout_seconds": 20})
    assert not ready.is_error, ready.content[0].text
    path = created.get("credentials_file")
    saved = read_env(Path(path)) if path else None
    deleted = await client.call_tool("delete_database", {"id": id, "confirm_name": name})
    assert deleted.structured_content["deleted"] is True, deleted.content[0].text
    assert path is None or not Path(path).exists()  # the delete removed it, under this os too
    return {"created": created, "ready": ready.structured_content, "saved": saved}


def assert_saved_privately(answers: dict[str, Any], local: Path) -> None:
    created, ready = answers["created"], answers["ready"]
    assert created["password_delivery"] == "file" and not created.get("password")
    path = Path(created["credentials_file"])
    assert local in path.parents and ready["credentials_file"] == str(path)
    saved = answers["saved"]
    assert saved["PGPASSWORD"] and saved["PGHOST"] == ready["instance"]["host"]  # completed with the host
    assert saved["DATABASE_URL"].startswith("postgresql://")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_create_wait_delete_over_stdio_under_a_windows_like_os(tmp_path: Path, mode: str):
    home, local = profile(tmp_path)
    audit = local / "redu-mcp" / "audit.jsonl"
    command = windows_like.stdio_command(
        "--sandbox", "--provisioning-seconds", "0.2", "--audit-log", str(audit), "--log-level", "INFO"
    )
    server = StdioServerParameters(
        command=command[0],
        args=command[1:],
        env={"HOME": str(home), "XDG_STATE_HOME": str(local), "PYTHONPATH": str(REPO)},
        cwd=str(REPO),
    )
    async with Client(server, mode=mode) as client:
        answers = await flow(client, f"win-{mode}")
    assert_saved_privately(answers, local / "redu-mcp")
    trail = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [r["outcome"] for r in trail] == ["created", "confirmed", "deleted"]


async def test_create_wait_delete_in_process_under_a_windows_like_os(tmp_path: Path, monkeypatch, sandbox):
    home, local = profile(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    windows_like.patch(monkeypatch)
    settings = Settings(sandbox=True, poll_interval_seconds=0.05, credentials_dir=local / "redu-mcp" / "credentials")
    async with connect(build_server(settings, client=sandbox.client())) as client:
        answers = await flow(client, "win-in-process")
    assert_saved_privately(answers, local / "redu-mcp" / "credentials")


async def test_outside_the_profile_the_password_is_shown_once_with_the_reason(tmp_path: Path, monkeypatch, sandbox):
    """Windows gives no owner to compare: a folder outside the user's profile could be shared."""
    home, _ = profile(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    windows_like.patch(monkeypatch)
    settings = Settings(sandbox=True, poll_interval_seconds=0.05, credentials_dir=tmp_path / "shared" / "creds")
    async with connect(build_server(settings, client=sandbox.client())) as client:
        created = (await client.call_tool("create_database", dict(CREATE_ARGS, name="outside"))).structured_content
    assert created["password_delivery"] == "shown_once" and created["password"]
    assert "outside your user profile" in created["message"]
    assert not any(p.is_file() for p in (tmp_path / "shared").rglob("*"))


def test_a_junction_on_the_way_is_refused_and_the_password_shown_once(tmp_path: Path, monkeypatch, sandbox):
    from redu_mcp.api import DATABASE, Database
    from redu_mcp.provisioning.credentials import CredentialStore, Revealed, deliver_password

    home, local = profile(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (local / "redu-mcp").symlink_to(elsewhere, target_is_directory=True)  # stands in for a junction
    monkeypatch.setenv("HOME", str(home))
    windows_like.patch(monkeypatch)
    store = CredentialStore(local / "redu-mcp" / "credentials")
    instance = Database(id=1, name="j", status="provisioning", created_at="2026-01-01")
    delivered = deliver_password(store, "file", "local", DATABASE, instance, "pw-junction-0123", False)
    assert isinstance(delivered, Revealed) and "symbolic link or junction" in (delivered.save_error or "")
    assert list(elsewhere.iterdir()) == []


def test_the_local_http_token_under_a_windows_like_os(tmp_path: Path, monkeypatch):
    home, local = profile(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    windows_like.patch(monkeypatch)
    state = local / "redu-mcp"
    made = load_or_create_token(state)
    assert made.created and (state / TOKEN_FILE_NAME).read_text().strip() == made.token
    again = load_or_create_token(state)
    assert not again.created and again.token == made.token  # reused across restarts
    # A link planted at the token path is replaced, never followed.
    target = tmp_path / "attacker-token"
    target.write_text("attacker-knows-this-token-0123456789\n")
    (state / TOKEN_FILE_NAME).unlink()
    (state / TOKEN_FILE_NAME).symlink_to(target)
    replaced = load_or_create_token(state)
    assert replaced.created and replaced.token != "attacker-knows-this-token-0123456789"
    assert not (state / TOKEN_FILE_NAME).is_symlink()
    assert target.read_text() == "attacker-knows-this-token-0123456789\n"
    # A state folder outside the profile is refused with a reason (the server does not start).
    with pytest.raises(ConfigError, match="outside your user profile"):
        load_or_create_token(tmp_path / "shared-state")


def test_the_audit_log_under_a_windows_like_os(tmp_path: Path, monkeypatch):
    home, local = profile(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    windows_like.patch(monkeypatch)
    path = local / "redu-mcp" / "audit.jsonl"
    log = AuditLog(str(path))
    log.record(AuditRecord("local", "create_database", "database", "created", id=1, name="a"))
    log.close()
    assert json.loads(path.read_text())["outcome"] == "created"
    planted = local / "planted.jsonl"
    planted.symlink_to(tmp_path / "someone-elses")
    with pytest.raises(PermissionError, match="symbolic link"):
        AuditLog(str(planted))
    assert not (tmp_path / "someone-elses").exists()


@pytest.mark.parametrize("command", [[], ["sandbox"], ["demo"]])
def test_engines_are_refused_clearly_off_linux(monkeypatch, capsys, command: list[str]):
    from redu_mcp.cli import main

    monkeypatch.setattr(sys, "platform", "win32")
    argv = [*command, "--engines"] if command else ["--sandbox", "--engines"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and "works on Linux only" in capsys.readouterr().err


# --- default folders per platform ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux", ".local/state/redu-mcp"),
        ("darwin", "Library/Application Support/redu-mcp"),
        ("win32", "AppData/Local/redu-mcp"),
    ],
)
def test_default_folders_follow_the_platform(tmp_path: Path, monkeypatch, platform: str, expected: str):
    import platformdirs.windows

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setattr(sys, "platform", platform)
    # platformdirs asks Windows itself (the shell folder API); here, the variable it would answer from.
    monkeypatch.setenv("LOCALAPPDATA", str(home / "AppData" / "Local"))
    monkeypatch.setattr(platformdirs.windows, "get_win_folder", lambda csidl: str(home / "AppData" / "Local"))
    settings = Settings()
    assert settings.state_dir == home / expected
    assert settings.credentials_root == home / expected / "credentials"
    # XDG_STATE_HOME, when set, wins on every platform (and --credentials-dir over both).
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert Settings().credentials_root == tmp_path / "xdg" / "redu-mcp" / "credentials"
    assert Settings(credentials_dir=tmp_path / "mine").credentials_root == tmp_path / "mine"
