"""No secret in any log, at any level, nor a run of 12 of its characters.

The real command at ``--log-level DEBUG`` over HTTP (where ``sse_starlette`` would log every chunk it
streams) reveals a password in a result: its log holds no trace of it. A hostile API echoes the key
minus its last 3 characters in an error: neither the model (through a real MCP client) nor the log
sees 12 characters of it. And the filter on the root handler cleans messages, arguments and
tracebacks of every secret the process registered.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from mcp import Client

from redu_mcp.api import REDACTED, ReduClient, ScrubbingFilter, remember_secret
from redu_mcp.api._scrub import PARTIAL
from redu_mcp.sandbox import SANDBOX_BASE_URL, Account, Sandbox
from redu_mcp.server import build_server
from tests.helpers import CREATE_ARGS, FAST_RETRY, MODES, cli_http_server, http_client

KEY = "sk-live-echoing-api-key-7f3a9c1e5b2d8046"


def windows(secret: str) -> list[str]:
    """Every run of ``PARTIAL`` characters of ``secret``: none may appear anywhere."""
    return [secret[i : i + PARTIAL] for i in range(len(secret) - PARTIAL + 1)]


def assert_absent(secret: str, text: str, where: str) -> None:
    for window in windows(secret):
        assert window not in text, f"{window!r} of a secret is in {where}"


@pytest.mark.parametrize("mode", MODES)
async def test_a_revealed_password_is_in_no_log_line_at_debug(tmp_path, mode):
    """In the handshake era the answer streams as SSE, which ``sse_starlette`` logs chunk by chunk."""
    with cli_http_server(tmp_path, "--secrets", "reveal", "--log-level", "DEBUG") as server:
        async with http_client(server.url, mode, bearer=server.token) as client:
            result = await client.call_tool("create_database", dict(CREATE_ARGS, name="debug-reveal"))
            password = result.structured_content["password"]
            assert password and result.structured_content["password_delivery"] == "shown_once"
            await client.call_tool("list_databases", {})
        log = server.log()
    assert "DEBUG" in log  # it really logged at DEBUG
    assert_absent(password, log, "the server's log")
    assert server.token is not None
    assert_absent(server.token, log.split("Bearer", 1)[-1].split("\n", 3)[-1], "the log after the banner")


@pytest.fixture
def echoing() -> Sandbox:
    return Sandbox(api_keys={KEY: Account("usr_echo", "echo", "e@example.test")}, provisioning_seconds=0)


async def test_an_error_echoing_most_of_the_key_reaches_neither_the_model_nor_the_log(echoing, make_settings, caplog):
    caplog.set_level(logging.DEBUG)
    echoing.faults.add(method="GET", path="/v1/me", status=401, message=f"invalid API key '{KEY[:-3]}'")
    client = ReduClient(KEY, base_url=SANDBOX_BASE_URL, transport=echoing.transport(), retry=FAST_RETRY)
    async with Client(build_server(make_settings(), client=client)) as mcp:
        result = await mcp.call_tool("whoami", {})
    text = str(result.model_dump(mode="json"))
    assert result.is_error and "invalid API key" in text and REDACTED in text
    assert_absent(KEY, text, "the tool result")
    server_log = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("redu_mcp.sandbox"))
    assert_absent(KEY, server_log, "the log")


def test_the_root_handler_filter_cleans_messages_arguments_and_tracebacks():
    secret = "state-key-or-token-4e1b7c2a9d"
    remember_secret(secret)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubbingFilter())
    logger = logging.getLogger("tests.scrub")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.debug("chunk: %s", {"password": secret})
        logger.info("partial: " + secret[:-4])
        try:
            raise ValueError(f"bad value {secret}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert written.count(REDACTED) >= 3
    assert_absent(secret, written, "the handler's output")


def test_payload_loggers_are_capped_below_debug(monkeypatch: Any):
    from redu_mcp.logs import CAPPED, setup_logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    for name in CAPPED:  # put every level back afterwards
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)
    setup_logging("DEBUG")
    try:
        for name in ("sse_starlette", "httpx2", "httpcore2", "mcp"):
            assert name in CAPPED and not logging.getLogger(name).isEnabledFor(logging.DEBUG)
        assert all(any(isinstance(f, ScrubbingFilter) for f in h.filters) for h in root.handlers)
    finally:
        for handler in root.handlers:
            handler.close()


def test_many_callers_keys_cannot_push_a_password_out_of_the_register():
    """Anyone can present keys under pass-through; a flood of them must not make a password loggable."""
    from redu_mcp.api import scrub
    from redu_mcp.api._scrub import REGISTER_LIMIT

    password = "pw-remembered-before-the-flood-5d2c"
    remember_secret(password)
    for n in range(REGISTER_LIMIT + 10):  # more keys than the register holds secrets
        remember_secret(f"junk-bearer-{n:06d}-0123456789", callers_key=True)
    assert password not in scrub(f"DEBUG chunk: {password}")
