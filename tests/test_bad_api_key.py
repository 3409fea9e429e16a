"""An API key that cannot be one (an example's placeholder, characters no key has) is refused in
one line, and never quoted: at start-up (exit 2 naming the variable and why), by the API library
(a typed ``MalformedKeyError`` before anything is sent, where httpx2 used to raise a
``UnicodeEncodeError`` quoting the character and its position), to a model (a tool error that says
what the operator must change), and as a pass-through bearer (401, not 503).
"""

from __future__ import annotations

import logging
import os
import random
import string
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from redu_mcp.api import MalformedKeyError, NotConfiguredError, ReduClient, api_key_problem
from redu_mcp.server import Settings, build_server
from tests.helpers import connect, raw_post, serving_mcp_http, two_users
from tests.test_http_passthrough_attacks import ME, passthrough

#: Keys that cannot be keys, and a word the reason must contain.
BAD_KEYS = {
    "an ellipsis alone": ("…", "placeholder"),
    "the README's old placeholder": ("paste-your-redu-api-key-here", "placeholder"),
    "YOUR_API_KEY": ("YOUR_API_KEY", "placeholder"),
    "an elided key": ("rk-live-…", "placeholder"),
    "angle brackets": ("<your key>", "placeholder"),
    "an unexpanded variable": ("${REDU_API_KEY}", "did not expand"),
    "an accented letter": ("rk-live-0123café456789", "ASCII"),
    "curly quotes": ("\u201crk-live-0123456789abcdef\u201d", "ASCII"),
    "a non-breaking space": ("rk-live-0123456789\u00a0abcdef", "ASCII"),
    "a trailing newline": ("rk-live-0123456789abcdef\n", "line breaks"),
    "a blank inside": ("rk-live-0123 456789abcdef", "blanks"),
    "a control character": ("rk-live-0123\x01456789abcdef", "control characters"),
}
CASES = list(BAD_KEYS)


def assert_not_quoted(key: str, text: str) -> None:
    """Neither the key, nor its body without blanks, nor any character of it beyond ASCII."""
    assert key not in text and key.strip() not in text
    assert not [c for c in key if not c.isascii() and c in text]


# --- at start-up ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_the_command_refuses_to_start_in_one_line_naming_the_variable(case: str):
    key, why = BAD_KEYS[case]
    done = subprocess.run(
        [sys.executable, "-m", "redu_mcp"],
        env={**os.environ, "REDU_API_KEY": key}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("redu-mcp: REDU_API_KEY ") and why in line, line
    assert "Traceback" not in done.stderr and "position" not in done.stderr
    assert_not_quoted(key, done.stderr)


# --- the API library --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
async def test_the_library_raises_a_typed_error_and_sends_nothing(case: str):
    key, why = BAD_KEYS[case]
    sent: list[httpx2.Request] = []
    transport = httpx2.MockTransport(lambda request: sent.append(request) or httpx2.Response(200, json={}))
    async with ReduClient(key, base_url="https://api.example.invalid/v1", transport=transport) as redu:
        for call in (redu.me, redu.list_databases, lambda: redu.get_redis(1)):
            with pytest.raises(MalformedKeyError) as raised:
                await call()
            assert isinstance(raised.value, NotConfiguredError)  # a subclass in the existing tree
            assert why in str(raised.value)
            assert_not_quoted(key, f"{raised.value} {raised.value!r}")
    assert sent == []


def test_real_looking_keys_pass():
    draw = random.Random(22)  # fixed: the same keys on every run
    alphabet = string.ascii_letters + string.digits + "-_"
    keys = ["rk-artifact-test-0123456789", "sandbox-key", "sk-live-alice-1f2e3d4c5b6a7988"]
    keys += ["".join(draw.choice(alphabet) for _ in range(draw.randint(20, 64))) for _ in range(500)]
    assert [k for k in keys if api_key_problem(k) is not None] == []


# --- what a model sees ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["an ellipsis alone", "YOUR_API_KEY", "a trailing newline"])
async def test_a_server_built_with_such_a_key_tells_the_model_what_to_change(case, mode, tmp_path: Path, caplog):
    caplog.set_level(logging.DEBUG)
    key, why = BAD_KEYS[case]
    server = build_server(Settings(api_key=key, credentials_dir=tmp_path / "credentials"))  # built in code
    async with connect(server, mode) as client:
        for tool, arguments in (("whoami", {}), ("list_databases", {})):
            result = await client.call_tool(tool, arguments)
            assert result.is_error
            text = result.content[0].text
            assert "REDU_API_KEY" in text and why in text, text
            assert_not_quoted(key, text)
    assert not [r for r in caplog.records if r.exc_info]
    assert_not_quoted(key, caplog.text)


# --- a pass-through bearer --------------------------------------------------------------------------------


async def test_a_placeholder_bearer_is_refused_without_asking_the_api(make_settings):
    sandbox = two_users()
    async with serving_mcp_http(passthrough(make_settings), sandbox) as (url, _):
        for bearer in ("YOUR_API_KEY", "paste-your-redu-api-key-here", "${REDU_API_KEY}"):
            assert (await raw_post(url, {"authorization": f"Bearer {bearer}"})).status_code == 401
    assert sandbox.count(*ME) == 0
