"""One-time passwords stay out of the transcript.

``--secrets file`` (default): the password goes to a new 0600 file in a 0700 directory (XDG state by
default) as an env file; the result carries the path and the non-secret connection details only.
A failed write hands the password over anyway, saying so. ``--secrets reveal``: the result carries
it, marked shown once. A password the caller typed is never echoed. The real password is read from
the API's own create response (recorded on the wire), so the checks cannot pass vacuously.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.types import CallToolResult

from redu_mcp.api import ReduClient
from redu_mcp.provisioning.credentials import read_env
from redu_mcp.sandbox import SANDBOX_BASE_URL, Sandbox
from redu_mcp.server import Settings, build_server
from tests.helpers import CREATE_ARGS, FAST_RETRY, connect

PASSWORD_FIELD = {"database": "db_password", "redis": "password"}


class Recording(httpx2.AsyncBaseTransport):
    """Passes requests to the sandbox and keeps every create response body."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.created: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and response.status_code < 300:
            body = await response.aread()
            self.created.append(json.loads(body))
            return httpx2.Response(response.status_code, headers=response.headers, content=body)
        return response


@pytest.fixture
def wire(sandbox: Sandbox) -> Recording:
    return Recording(sandbox.transport())


@pytest.fixture
def make(wire: Recording, make_settings):
    def build(**overrides: Any):
        client = ReduClient(sandbox_key(), base_url=SANDBOX_BASE_URL, transport=wire, retry=FAST_RETRY)
        return build_server(make_settings(**overrides), client=client)

    return build


def sandbox_key() -> str:
    return Sandbox().default_key


def everything(result: CallToolResult) -> str:
    """All a client (and so the model) receives from a call, as one text."""
    return json.dumps(result.model_dump(mode="json", by_alias=True))


async def create(client, kind: str, name: str, **extra: Any) -> CallToolResult:
    return await client.call_tool(f"create_{kind}", dict(CREATE_ARGS, name=name, **extra))


# --- file mode (the default) -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["database", "redis"])
async def test_the_password_goes_to_a_private_file_not_the_result(make, wire, credentials_dir, mode, kind):
    async with connect(make(), mode) as client:
        created = await create(client, kind, "app-store")
        assert not created.is_error, created.content[0].text
        password = wire.created[-1][PASSWORD_FIELD[kind]]
        assert len(password) >= 16
        result = created.structured_content
        assert result["password_delivery"] == "file" and result["password"] is None
        path = Path(result["credentials_file"])
        assert path.parent == credentials_dir
        assert "credentials_file" in result["message"] and "not shown here" in result["message"]
        assert password not in everything(created)

        # The file: new, 0600, in a 0700 directory, an env file holding the real password.
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(credentials_dir.stat().st_mode) == 0o700
        values = read_env(path)
        assert values["PGPASSWORD" if kind == "database" else "REDIS_PASSWORD"] == password
        # Non-secret connection details are in the result (the connection itself once there is a host).
        assert result["instance"]["port"] == (5432 if kind == "database" else 6379)
        assert result["connection"] is None
        if kind == "database":
            assert result["instance"]["db_user"] == "appuser" and result["instance"]["db_name"] == "app"

        # Once ready, the same file is completed with the host and a full connection URI.
        id = result["instance"]["id"]
        waited = await client.call_tool("wait_for_ready", {"kind": kind, "id": id})
        assert waited.structured_content["ready"] is True
        host = waited.structured_content["connection"]["host"]
        assert waited.structured_content["credentials_file"] == str(path)
        assert password not in everything(waited)
        assert waited.structured_content["connection"]["uri"].count(host) == 1  # the URI shown has no password
        values = read_env(path)
        uri = values["DATABASE_URL" if kind == "database" else "REDIS_URL"]
        assert password in uri and host in uri
        assert values["PGHOST" if kind == "database" else "REDIS_HOST"] == host
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(credentials_dir.iterdir()) == [path]  # no temporary left behind


async def test_the_default_directory_is_the_xdg_state_one(wire, tmp_path, mode):
    """conftest points XDG_STATE_HOME at the test's own directory. Real instances' files go to
    ``credentials``; the sandbox's to a folder of each run's own, never beside real ones."""
    assert Settings().credentials_root == tmp_path / "state" / "redu-mcp" / "credentials"
    settings = Settings(sandbox=True, poll_interval_seconds=0.05)
    client = ReduClient(sandbox_key(), base_url=SANDBOX_BASE_URL, transport=wire, retry=FAST_RETRY)
    async with connect(build_server(settings, client=client), mode) as mcp:
        created = await create(mcp, "database", "xdg")
    path = Path(created.structured_content["credentials_file"])
    assert path.parent.parent == tmp_path / "state" / "redu-mcp" / "sandbox-credentials"
    assert path.parent.name.startswith("run-")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    async with connect(build_server(settings, client=client), mode) as mcp:  # a second run: its own folder
        again = Path((await create(mcp, "database", "xdg-2")).structured_content["credentials_file"])
    assert again.parent != path.parent and path.exists()


async def test_an_existing_file_is_never_overwritten(make, wire, credentials_dir, mode):
    credentials_dir.mkdir(mode=0o700)
    squatter = credentials_dir / "redis-cache-1.env"  # the name the first create would take
    squatter.write_text("MINE=1\n")
    async with connect(make(), mode) as client:
        created = await create(client, "redis", "cache")
    path = Path(created.structured_content["credentials_file"])
    assert created.structured_content["instance"]["id"] == 1
    assert path != squatter and path.name == "redis-cache-1-2.env"
    assert squatter.read_text() == "MINE=1\n"
    assert read_env(path)["REDIS_PASSWORD"] == wire.created[-1]["password"]


@pytest.mark.parametrize("kind", ["database", "redis"])
async def test_a_failed_write_still_hands_the_password_over_and_says_so(make, wire, tmp_path, mode, kind):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the credentials directory should go\n")
    async with connect(make(credentials_dir=blocker / "credentials"), mode) as client:
        created = await create(client, kind, "unlucky")
    assert not created.is_error
    result = created.structured_content
    password = wire.created[-1][PASSWORD_FIELD[kind]]
    assert result["password_delivery"] == "shown_once"
    assert result["password"] == password
    assert result["credentials_file"] is None
    assert "Saving the password to a file failed" in result["message"]
    assert "shown here instead, this once" in result["message"]


async def test_a_credentials_directory_of_another_user_is_not_used(make, wire, credentials_dir, monkeypatch, mode):
    credentials_dir.mkdir(mode=0o700)
    monkeypatch.setattr("os.getuid", lambda: credentials_dir.stat().st_uid + 1)  # as if someone else made it
    async with connect(make(), mode) as client:
        created = await create(client, "redis", "shared-tmp")
    assert created.structured_content["password_delivery"] == "shown_once"
    assert "belongs to another user" in created.structured_content["message"]
    assert list(credentials_dir.iterdir()) == []


# --- reveal mode ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["database", "redis"])
async def test_reveal_puts_the_password_in_the_result_marked_shown_once(make, wire, credentials_dir, mode, kind):
    async with connect(make(secrets="reveal"), mode) as client:
        assert "Secrets mode: reveal" in (client.instructions or "")
        created = await create(client, kind, "shown")
    result = created.structured_content
    assert result["password_delivery"] == "shown_once"
    assert result["password"] == wire.created[-1][PASSWORD_FIELD[kind]]
    assert "shown this once" in result["message"]
    assert result["credentials_file"] is None
    assert not credentials_dir.exists()


# --- a password the caller typed ----------------------------------------------------------------------------------

TYPED = "Caller-Typed-Secret-7f3a9"


@pytest.mark.parametrize("secrets", ["file", "reveal"])
@pytest.mark.parametrize("kind", ["database", "redis"])
async def test_a_caller_supplied_password_is_never_echoed(make, wire, credentials_dir, caplog, mode, secrets, kind):
    caplog.set_level(logging.DEBUG)
    async with connect(make(secrets=secrets), mode) as client:
        created = await create(client, kind, "typed", **{PASSWORD_FIELD[kind]: TYPED})
        assert not created.is_error, created.content[0].text
        assert wire.created[-1][PASSWORD_FIELD[kind]] == TYPED  # it did reach the API
        result = created.structured_content
        assert result["password_delivery"] == "caller_supplied"
        assert result["password"] is None
        assert TYPED not in everything(created)
        assert (
            read_env(Path(result["credentials_file"]))["PGPASSWORD" if kind == "database" else "REDIS_PASSWORD"]
            == TYPED
        )

        # The same name again: reported, not created, and still not echoed.
        again = await create(client, kind, "typed", **{PASSWORD_FIELD[kind]: TYPED})
        assert again.structured_content["created"] is False
        assert TYPED not in everything(again)
    assert TYPED not in caplog.text
    assert all(TYPED not in repr(record.args) for record in caplog.records)


@pytest.mark.parametrize(
    "bad",
    [
        "Short-7",  # below the minimum length
        "Too-Long-" + "x" * 200,  # above the maximum
    ],
)
async def test_an_invalid_typed_password_is_refused_without_repeating_it(make, sandbox, caplog, mode, bad):
    caplog.set_level(logging.DEBUG)
    async with connect(make(), mode) as client:
        for kind in ("database", "redis"):
            refused = await create(client, kind, "nope", **{PASSWORD_FIELD[kind]: bad})
            assert refused.is_error
            text = refused.content[0].text
            assert PASSWORD_FIELD[kind] in text and "Nothing was sent to the Redu API" in text
            assert bad not in everything(refused)
            # Wrong types too: a list or an object holding the password.
            for wrapped in ([bad], {"value": bad}):
                refused = await create(client, kind, "nope", **{PASSWORD_FIELD[kind]: wrapped})
                assert refused.is_error and bad not in everything(refused)
            # Beside another invalid argument.
            refused = await create(client, kind, "Not A Name", **{PASSWORD_FIELD[kind]: bad})
            assert refused.is_error and bad not in everything(refused)
    assert sandbox.count() == 0
    assert bad not in caplog.text
    assert all(bad not in repr(record.args) for record in caplog.records)


async def test_a_typed_password_echoed_by_the_api_is_scrubbed_from_the_result_and_logs(make_settings, mode, caplog):
    """Belt and braces: should an API error message ever repeat the password, neither the model nor
    the logs see it (the client scrubs it from the error before anything else handles it)."""
    from redu_mcp.sandbox.app import error

    caplog.set_level(logging.DEBUG)
    sandbox = Sandbox()

    async def echoing(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await error(422, "validation_error", f"password '{TYPED}' is too weak")(scope, receive, send)
            return
        await sandbox.app(scope, receive, send)

    client = ReduClient(
        sandbox.default_key, base_url=SANDBOX_BASE_URL, transport=httpx2.ASGITransport(app=echoing), retry=FAST_RETRY
    )
    async with connect(build_server(make_settings(), client=client), mode) as mcp:
        refused = await create(mcp, "redis", "weak", password=TYPED)
    assert refused.is_error and "HTTP 422" in refused.content[0].text
    assert "[REDACTED]" in refused.content[0].text
    assert TYPED not in everything(refused)
    assert "too weak" in caplog.text  # the failure was logged ...
    assert TYPED not in caplog.text  # ... without the password
    assert all(TYPED not in repr(record.args) for record in caplog.records)
