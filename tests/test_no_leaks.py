"""No secret leaks: the API key and every password stay out of logs (any level, any logger), stderr,
exceptions, error results, progress and elicitation messages.

A distinctive key is registered on the sandbox so a leak cannot hide behind a common string. The
whole workflow runs, error paths included (401, 404, 422, 503 with retries, a dropped connection
after a create was applied), in-process in both protocol eras, and once more in a real stdio child
process at ``--log-level DEBUG`` talking HTTP to the sandbox on a loopback port.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import ElicitResult

from redu_mcp import api as errors
from redu_mcp.api import DATABASE, REDIS, DatabaseCreate, ReduClient, RetryPolicy
from redu_mcp.provisioning.credentials import read_env
from redu_mcp.sandbox import SANDBOX_BASE_URL, Account, Sandbox
from redu_mcp.server import Settings, build_server
from tests.helpers import CREATE_ARGS, FAST_RETRY, connect, serving_asgi

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-live-LEAKCHECK-7c1e0b9d5a3f42e8b6d0c4a2f1e9d8c7"
WRONG_KEY = "sk-live-LEAKCHECK-WRONG-0f1e2d3c4b5a69788796a5b4"
TYPED = ["Typed-LEAKCHECK-pw-4b7e1d", "Typed-LEAKCHECK-pw-9a2c6f"]
TOO_SHORT = "LkShrt1"  # 7 characters: refused by validation, must not be repeated either


class Recording(httpx2.AsyncBaseTransport):
    """Passes requests to the sandbox; keeps every password the API handed out."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.passwords: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and response.status_code < 300:
            body = await response.aread()
            data = json.loads(body)
            self.passwords += [data[f] for f in ("db_password", "password") if data.get(f)]
            return httpx2.Response(response.status_code, headers=response.headers, content=body)
        return response


def leak_sandbox(provisioning_seconds: float = 0.2) -> Sandbox:
    return Sandbox(
        api_keys={KEY: Account("usr_leakcheck", "leakcheck", "leak@example.com")},
        provisioning_seconds=provisioning_seconds,
    )


def assert_absent(secrets: list[str], **places: str) -> None:
    assert all(len(s) >= 7 for s in secrets)
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"


def dump(value: Any) -> str:
    return json.dumps(value.model_dump(mode="json", by_alias=True) if hasattr(value, "model_dump") else value)


# --- in-process, both eras -------------------------------------------------------------------------------------


async def run_workflow(client: Client, sandbox: Sandbox, seen: list[str]) -> None:
    """Every tool, and every error path we can provoke, with all output collected into ``seen``."""

    async def call(name: str, args: dict[str, Any], **options: Any) -> Any:
        result = await client.call_tool(name, args, **options)
        seen.append(dump(result))
        return result

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    for name in ("whoami", "list_create_options"):
        assert not (await call(name, {})).is_error
    db = (await call("create_database", dict(CREATE_ARGS, name="leak-db"))).structured_content["instance"]["id"]
    cache = (await call("create_redis", dict(CREATE_ARGS, name="leak-cache", password=TYPED[0]))).structured_content
    assert cache["password_delivery"] == "caller_supplied"
    assert (await call("create_redis", dict(CREATE_ARGS, name="short", password=TOO_SHORT))).is_error
    # The API refuses it (unknown flavor: 422) with a typed password in the request body.
    assert (
        await call("create_database", dict(CREATE_ARGS, name="bad-flavor", flavor_id="nope", db_password=TYPED[1]))
    ).is_error
    await call("list_databases", {})
    await call("list_redis", {"limit": 5})
    waited = await call("wait_for_ready", {"kind": "database", "id": db}, progress_callback=on_progress)
    assert waited.structured_content["ready"] is True
    await call("get_database", {"id": db})
    seen.append((await client.read_resource(f"redu://databases/{db}")).contents[0].text)
    # Upstream trouble: 503s retried then reported; a create applied but its answer dropped.
    sandbox.faults.add(method="GET", path="/v1/redis/*", status=503, times=-1)
    assert (await call("get_redis", {"id": cache["instance"]["id"]})).is_error
    assert (
        await call(
            "wait_for_ready",
            {"kind": "redis", "id": cache["instance"]["id"], "timeout_seconds": 1},
            progress_callback=on_progress,
        )
    ).is_error
    sandbox.faults.clear()
    sandbox.faults.add(method="POST", path="/v1/databases", drop=True, apply=True)
    lost = await call("create_database", dict(CREATE_ARGS, name="lost-answer"))
    assert lost.structured_content["password_delivery"] == "not_returned"
    # Deletes: confirmed by the user, refused, missing.
    assert (await call("delete_database", {"id": db})).structured_content["deleted"] is True
    assert (
        await call("delete_redis", {"id": cache["instance"]["id"], "confirm_name": "wrong-name"})
    ).structured_content["deleted"] is False
    assert (await call("delete_database", {"id": db})).structured_content["deleted"] is False  # already gone
    assert (await call("get_database", {"id": 987654})).is_error


async def test_no_secret_in_results_logs_or_stderr_in_process(make_settings, caplog, capfd, mode):
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    sandbox = leak_sandbox()
    wire = Recording(sandbox.transport())
    api = ReduClient(KEY, base_url=SANDBOX_BASE_URL, transport=wire, retry=FAST_RETRY)
    seen: list[str] = []

    async def confirm(context: Any, params: Any) -> ElicitResult:
        seen.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with connect(build_server(make_settings(), client=api), mode, elicitation_callback=confirm) as client:
        await run_workflow(client, sandbox, seen)
    async with connect(build_server(make_settings(), client=sandbox.client(api_key=WRONG_KEY)), mode) as client:
        refused = await client.call_tool("whoami", {})
        assert refused.is_error and "HTTP 401" in refused.content[0].text
        seen.append(dump(refused))

    assert len(wire.passwords) == 2  # one generated, one typed (the lost answer never reached the server)
    secrets = [KEY, WRONG_KEY, *wire.passwords, *TYPED, TOO_SHORT]
    out, err = capfd.readouterr()
    records = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.__dict__.get('extra', '')}" for r in caplog.records)
    assert_absent(secrets, results="\n".join(seen), logs=caplog.text, records=records, stdout=out, stderr=err)
    # Not vacuous: debug records of the API calls were there to be searched.
    assert any(r.levelno == logging.DEBUG and r.name == "redu_mcp.api" for r in caplog.records)
    assert any("leak-db" in text for text in seen)


async def test_exceptions_never_carry_the_key():
    sandbox = leak_sandbox()
    quick = RetryPolicy(attempts=2, backoff_initial=0.001, backoff_max=0.001, total_seconds=2)
    raised: list[BaseException] = []
    async with ReduClient(WRONG_KEY, base_url=SANDBOX_BASE_URL, transport=sandbox.transport(), retry=quick) as bad:
        assert "LEAKCHECK" not in repr(bad)
        with pytest.raises(errors.AuthenticationError) as caught:
            await bad.me()
        raised.append(caught.value)
    async with ReduClient(KEY, base_url=SANDBOX_BASE_URL, transport=sandbox.transport(), retry=quick) as good:
        with pytest.raises(errors.NotFoundError) as caught:
            await good.get_instance(REDIS, 5)
        raised.append(caught.value)
        sandbox.faults.add(method="GET", path="/v1/databases", status=503, times=-1)
        with pytest.raises(errors.ServerError) as caught:
            await good.list_instances(DATABASE)
        raised.append(caught.value)
        sandbox.faults.clear()
        sandbox.faults.add(method="POST", path="/v1/databases", drop=True)
        with pytest.raises(errors.TransportError) as caught:
            await good.create_database(DatabaseCreate(name="x", db_password=TYPED[0], **CREATE_ARGS))
        raised.append(caught.value)
    for exc in raised:
        text = f"{exc!s} {exc!r} {exc.args!r} {vars(exc)!r}"
        assert KEY not in text and WRONG_KEY not in text and TYPED[0] not in text
    settings = Settings(api_key=KEY, auth_token=KEY + "-operator")
    assert KEY not in repr(settings)


# --- a real stdio child process at DEBUG -----------------------------------------------------------------------------


def child(api_url: str, key: str, state: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "redu_mcp", "--api-url", api_url, "--log-level", "DEBUG"],
        env={"REDU_API_KEY": key, "XDG_STATE_HOME": str(state)},
        cwd=str(REPO),
    )


async def test_no_secret_on_a_stdio_child_stderr_at_debug(tmp_path: Path):
    sandbox = leak_sandbox(provisioning_seconds=0.3)
    errlog_path = tmp_path / "child-stderr.log"
    seen: list[str] = []
    async with serving_asgi(sandbox.app, lifespan="off") as port:
        api_url = f"http://127.0.0.1:{port}/v1"
        with errlog_path.open("w") as errlog:
            async with Client(stdio_client(child(api_url, KEY, tmp_path / "state"), errlog=errlog)) as client:

                async def call(name: str, args: dict[str, Any]) -> Any:
                    result = await client.call_tool(name, args, read_timeout_seconds=30)
                    seen.append(dump(result))
                    return result

                assert not (await call("whoami", {})).is_error
                created = (await call("create_database", dict(CREATE_ARGS, name="child-db"))).structured_content
                generated = read_env(Path(created["credentials_file"]))["PGPASSWORD"]
                typed = await call("create_redis", dict(CREATE_ARGS, name="child-cache", password=TYPED[0]))
                assert typed.structured_content["password_delivery"] == "caller_supplied"
                assert (await call("create_redis", dict(CREATE_ARGS, name="short", password=TOO_SHORT))).is_error
                assert (
                    await call("create_database", dict(CREATE_ARGS, name="bad", flavor_id="no", db_password=TYPED[1]))
                ).is_error
                id = created["instance"]["id"]
                ready = await call("wait_for_ready", {"kind": "database", "id": id})
                assert ready.structured_content["ready"] is True
                sandbox.faults.add(method="GET", path="/v1/databases/*", status=503, times=1)
                assert not (await call("get_database", {"id": id})).is_error  # retried past a 503
                assert (await call("delete_database", {"id": id, "confirm_name": "child-db"})).structured_content[
                    "deleted"
                ]
                assert (await call("get_database", {"id": id})).is_error
        # A second child with a key the API refuses.
        with errlog_path.open("a") as errlog:
            async with Client(stdio_client(child(api_url, WRONG_KEY, tmp_path / "state"), errlog=errlog)) as client:
                refused = await client.call_tool("whoami", {})
                assert refused.is_error and "HTTP 401" in refused.content[0].text
                seen.append(dump(refused))

    stderr = errlog_path.read_text()
    assert "DEBUG redu_mcp.api: GET /me -> 200" in stderr and "-> 503" in stderr  # it did log, at DEBUG
    assert_absent([KEY, WRONG_KEY, generated, *TYPED, TOO_SHORT], stderr=stderr, results="\n".join(seen))
