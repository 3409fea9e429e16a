"""A hostile (or careless) API plays the attacker: secrets hidden in responses and echoed in errors.

Only declared fields leave the server, at any depth; free text is scrubbed of URI passwords; an
error that echoes the API key or a password, raw or encoded, is scrubbed before anything shortens
it. Each case drives the server through a real MCP client and searches everything a model, a
resource reader or the log could see.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from mcp import Client

from redu_mcp.api import ReduClient
from redu_mcp.sandbox import SANDBOX_BASE_URL, Account, Sandbox
from redu_mcp.server import build_server
from tests.helpers import CREATE_ARGS, FAST_RETRY, connect, create

KEY = "sk-live-hostile-api-key-0123456789abcdef"
SECRETS = ["nested-pw-111", "dsn-pw-222", "passwd-333", "token-444", "desc-pw-555"]


def everything(result: Any) -> str:
    return json.dumps(result.model_dump(mode="json"))


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the server logged (the sandbox, which plays the API, logs what it was told to send)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("redu_mcp.sandbox"))


@pytest.fixture
def hostile() -> Sandbox:
    sandbox = Sandbox(
        api_keys={
            KEY: Account("usr_h", "hostile", "h@example.test", extra={"api_token": SECRETS[3], "passwd": SECRETS[2]})
        },
        provisioning_seconds=0,
    )
    sandbox.store.networks.append({"id": "net-x", "name": "x", "password": SECRETS[0]})
    sandbox.store.security_groups.append(
        {
            "id": 9,
            "name": "legacy",
            "description": f"old: postgresql://admin:{SECRETS[4]}@10.0.0.1/db",
            "rules": [{"direction": "ingress", "secret": SECRETS[1]}],
        }
    )
    return sandbox


@pytest.fixture
def server(hostile: Sandbox, make_settings):
    client = ReduClient(KEY, base_url=SANDBOX_BASE_URL, transport=hostile.transport(), retry=FAST_RETRY)
    return build_server(make_settings(), client=client)


async def plant(sandbox: Sandbox, id: int) -> None:
    """The API starts sending more than the docs say about this instance."""
    sandbox.store.record("database", id).public.update(
        connection={"host": "h", "password": SECRETS[0]},
        dsn=f"postgresql://appuser:{SECRETS[1]}@203.0.113.5:5432/app",
        passwd=SECRETS[2],
        auth={"token": SECRETS[3]},
    )


async def test_only_declared_fields_leave_the_server(server, hostile, mode, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with connect(server, mode) as client:
        id = (await create(client, "database", "victim"))["instance"]["id"]
        await plant(hostile, id)
        for tool, args in [
            ("get_database", {"id": id}),
            ("list_databases", {}),
            ("wait_for_ready", {"kind": "database", "id": id}),
            ("whoami", {}),
            ("list_create_options", {}),
        ]:
            result = await client.call_tool(tool, args)
            assert not result.is_error, result.content[0].text
            seen.append(everything(result))
        for uri in (f"redu://databases/{id}", "redu://networks", "redu://security-groups"):
            seen.append(json.dumps((await client.read_resource(uri)).model_dump(mode="json")))
    everything_seen = "\n".join([*seen, server_log(caplog)])
    for secret in SECRETS:
        assert secret not in everything_seen, secret
    assert "[REDACTED]" in everything_seen  # the security group's description was scrubbed, not dropped
    assert "victim" in everything_seen  # and the ordinary fields are all there


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s,
        lambda s: quote(s, safe=""),
        lambda s: json.dumps(s)[1:-1],
        lambda s: s.encode().hex(),
        lambda s: base64.b64encode(s.encode()).decode(),
    ],
    ids=["raw", "url-encoded", "json-escaped", "hex", "base64"],
)
@pytest.mark.parametrize("first", ["key", "password"])
async def test_an_error_echoing_the_key_or_a_password_is_scrubbed(server, hostile, encode, first, caplog):
    caplog.set_level(logging.DEBUG)
    typed = "Typed~Secret>99?!"  # its base64 holds "+", its URL-safe base64 "-": two forms to catch
    # The API's 422 quotes what it received, in some encoding, across the point where the message is
    # cut (300 characters): cutting before scrubbing would have left a recognisable prefix in the
    # result. Each secret in turn comes first (what comes after it is cut off either way).
    filler = "x" * 280
    echoes = {"key": f"key={encode(KEY)}", "password": f"pw={encode(typed)}"}
    second = "password" if first == "key" else "key"
    hostile.faults.add(
        method="POST", path="/v1/databases", status=422, message=f"{filler} {echoes[first]} {echoes[second]}"
    )
    async with Client(server) as client:
        result = await client.call_tool("create_database", dict(CREATE_ARGS, name="echo", db_password=typed))
    text = everything(result) + server_log(caplog)
    assert result.is_error and f"{filler} {echoes[first].partition('=')[0]}=" in text  # the echo came through, scrubbed
    for secret in (KEY, typed):
        for form in (secret, encode(secret), secret[:12], encode(secret)[:12]):
            assert form not in text, form


# --- a password the caller typed, echoed back -----------------------------------------------------------------

TYPED = f"Typed-Secret-{secrets.token_hex(6)}!"  # this module's own: no other test can have registered it


class EchoingCreates(httpx2.AsyncBaseTransport):
    """The hostile API's answer to a create repeats the password it was sent, in a field the server
    shows (``status``): no error scrubber sees it, only the tool's own redaction of its password
    arguments (``arguments.argument_checker``, from the schema's ``writeOnly``)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if request.method != "POST" or response.status_code != 201:
            return response
        await response.aread()
        body = json.loads(response.content)
        sent = json.loads(request.content)
        body["status"] = f"provisioning (accepted password {sent['db_password']})"
        return httpx2.Response(201, json=body)


async def test_a_typed_password_echoed_in_a_create_answer_is_redacted_from_the_result(hostile, make_settings, caplog):
    caplog.set_level(logging.DEBUG)
    transport = EchoingCreates(hostile.transport())
    client = ReduClient(KEY, base_url=SANDBOX_BASE_URL, transport=transport, retry=FAST_RETRY)
    async with Client(build_server(make_settings(secrets="reveal"), client=client)) as mcp:
        result = await mcp.call_tool("create_database", dict(CREATE_ARGS, name="echo", db_password=TYPED))
    assert not result.is_error, result.content[0].text
    assert result.structured_content["instance"]["status"] == "provisioning (accepted password [REDACTED])"
    assert TYPED not in everything(result) + server_log(caplog)


async def test_a_typed_password_echoed_by_a_later_request_is_scrubbed_everywhere(server, hostile, caplog):
    """The create's answer is lost (502 after it was applied) and the look-up that settles it fails
    with an error that quotes the password the create had sent: not in the result, not in any log.
    The password is this test's own: the process's scrub register must not know it from another test."""
    caplog.set_level(logging.DEBUG)
    typed = f"Typed-Later-{secrets.token_hex(6)}!"
    hostile.faults.add(method="POST", path="/v1/databases", status=502, apply=True)
    hostile.faults.add(
        method="GET", path="/v1/databases", status=503, times=-1, after=1, message=f"saw db_password={typed}"
    )
    async with Client(server) as client:
        result = await client.call_tool("create_database", dict(CREATE_ARGS, name="echo", db_password=typed))
    text = everything(result)
    assert result.is_error and "looking the name up failed too" in text and "saw db_password=[REDACTED]" in text
    assert typed not in text + server_log(caplog)
