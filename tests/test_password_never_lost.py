"""A password handed to the server is never lost: each step of saving it fails in turn.

``deliver_password`` is the one place that decides. Whatever fails (a missing OS feature, a refused
directory, a full disk, a failed sync, a planted file at every name, a value that cannot be written
safely, a bug), the create's password comes back once, marked as shown once, with the reason; no
half-written file is left behind. Then the same through a real MCP client, with ``os`` failing.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from redu_mcp.api import DATABASE, Database
from redu_mcp.provisioning import credentials, private_files
from redu_mcp.provisioning.credentials import CredentialStore, Revealed, SavedToFile, SuppliedNotSaved, deliver_password
from tests.helpers import CREATE_ARGS, connect

PASSWORD = "pw-one-time-Zq8xVb3nT5"
INSTANCE = Database(id=7, name="orders", status="provisioning", db_user="appuser", port=5432, created_at="2026-05-30")


def fail_with(exc: BaseException):
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


#: (the step, how to make it fail, the reason the caller is given)
STEPS: list[tuple[str, Any, str]] = [
    (
        "making the folder",
        lambda m: m.setattr(os, "mkdir", fail_with(PermissionError(errno.EACCES, "Permission denied"))),
        "Permission denied",
    ),
    (
        "opening the folder",
        lambda m: m.setattr(private_files, "_DescriptorDir", fail_with(OSError(errno.EIO, "Input/output error"))),
        "Input/output error",
    ),
    ("a folder of another account", lambda m: m.setattr(os, "getuid", lambda: 12345), "belongs to another user"),
    (
        "making the folder private",
        lambda m: m.setattr(os, "fchmod", fail_with(PermissionError(errno.EPERM, "Operation not permitted"))),
        "Operation not permitted",
    ),
    ("os has no fchmod (a missing feature)", lambda m: m.delattr(os, "fchmod"), ""),
    (
        "creating the file",
        lambda m: m.setattr(private_files._DescriptorDir, "write_new", fail_with(disk_full())),
        "No space left",
    ),
    (
        "something at every name",
        lambda m: m.setattr(
            private_files._DescriptorDir, "write_new", fail_with(FileExistsError(errno.EEXIST, "File exists"))
        ),
        "too many credential files",
    ),
    ("writing", lambda m: m.setattr(private_files, "_write_all", fail_with(disk_full())), "No space left"),
    (
        "syncing",
        lambda m: m.setattr(os, "fsync", fail_with(OSError(errno.EIO, "Input/output error"))),
        "Input/output error",
    ),
    (
        "an unsafe value",
        lambda m: m.setattr(
            credentials,
            "render_env",
            fail_with(credentials.UnsafeValue("the value of PGUSER holds a control character")),
        ),
        "control character",
    ),
    ("a bug", lambda m: m.setattr(CredentialStore, "save", fail_with(RuntimeError("unexpected"))), "unexpected"),
]


@pytest.mark.parametrize(("step", "break_it", "reason"), STEPS, ids=[s[0] for s in STEPS])
def test_whatever_step_fails_the_password_is_shown_once_with_the_reason(
    tmp_path: Path, monkeypatch, step, break_it, reason
):
    folder = tmp_path / "credentials"
    store = CredentialStore(folder)
    with monkeypatch.context() as m:
        break_it(m)
        delivered = deliver_password(store, "file", "local", DATABASE, INSTANCE, PASSWORD, supplied=False)
        supplied = deliver_password(store, "file", "local", DATABASE, INSTANCE, PASSWORD, supplied=True)
    assert isinstance(delivered, Revealed) and delivered.password == PASSWORD
    assert delivered.save_error and reason in delivered.save_error
    assert isinstance(supplied, SuppliedNotSaved) and reason in supplied.save_error  # the caller has it already
    assert not folder.exists() or [p for p in folder.rglob("*") if p.is_file()] == []  # nothing half-written
    # And once the obstacle is gone, the same store saves it.
    assert isinstance(deliver_password(store, "file", "local", DATABASE, INSTANCE, PASSWORD, False), SavedToFile)


async def test_over_mcp_a_failing_disk_still_hands_the_password_over_once(make_server, sandbox, monkeypatch):
    monkeypatch.setattr(os, "fsync", fail_with(disk_full()))
    async with connect(make_server()) as client:
        result = await client.call_tool("create_database", dict(CREATE_ARGS, name="disk-full"))
    created = result.structured_content
    assert not result.is_error and created["created"] is True
    assert created["password_delivery"] == "shown_once" and created["password"]
    assert "No space left on device" in created["message"]
    assert sandbox.count("POST") == 1  # created once, not retried because of the file
