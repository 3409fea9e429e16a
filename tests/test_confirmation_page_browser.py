"""A real browser on the confirmation page (``--confirm human``): headless Chromium opens the address
the client was given, types the instance's name, presses the button, and the delete completes.

Chromium and its driver are Debian's ``chromium`` and ``chromium-driver`` (``.ci/install-os-packages.sh``).
The test speaks the W3C WebDriver protocol to ``chromedriver`` as plain JSON over HTTP with httpx2,
the project's own HTTP client: no browser-automation library, no Node. Chromium runs as root here,
so without its sandbox (``--no-sandbox``), and with a fresh profile each session.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.confirmation_pages import PageClient, human_server
from tests.helpers import connect, free_port, seed_instance, serving_mcp_http

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromium-driver not installed: .ci/install-os-packages.sh installs them",
)
TOKEN = "browser-test-token-0123456789abcdef"
#: A page's life here: long enough for a browser on a busy machine, short enough that a failed step
#: (the person never posts) ends the waiting call soon.
LIFETIME = 30.0
#: The flags the CI machines need: root (no sandbox), no GPU, and nothing fetched besides the page.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


@pytest.fixture(scope="module")
def chromedriver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A chromedriver on a free loopback port, for this module; its base URL."""
    assert CHROMEDRIVER is not None
    port = free_port()
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    process = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}", f"--log-path={log}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx2.Client(timeout=2) as http:
            for _ in range(200):
                try:
                    if http.get(f"{base}/status").json()["value"]["ready"]:
                        break
                except (httpx2.HTTPError, ValueError, KeyError):
                    pass
                if process.poll() is not None:
                    pytest.fail(f"chromedriver exited with {process.returncode}")
                time.sleep(0.05)
            else:
                pytest.fail("chromedriver did not become ready")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Browser:
    """One Chromium session: what a person does with a page, as WebDriver commands."""

    def __init__(self, http: httpx2.AsyncClient, session: str) -> None:
        self.http = http
        self.session = session

    async def _command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.http.request(method, f"/session/{self.session}{path}", json=body)
        value = response.json()["value"]
        assert response.status_code == 200, value
        return value

    async def open(self, url: str) -> None:
        await self._command("POST", "/url", {"url": url})

    async def find(self, css: str) -> str:
        found = await self._command("POST", "/element", {"using": "css selector", "value": css})
        return str(found[ELEMENT])

    async def type(self, css: str, text: str) -> None:
        await self._command("POST", f"/element/{await self.find(css)}/value", {"text": text})

    async def press(self, css: str) -> None:
        """Click ``css`` and wait for the page it leads to: until the old page's body is gone (a
        form's click returns before its post is answered)."""
        old = await self.find("body")
        await self._command("POST", f"/element/{await self.find(css)}/click", {})
        with anyio.fail_after(20):
            while (await self.http.get(f"/session/{self.session}/element/{old}/text")).status_code == 200:
                await anyio.sleep(0.05)

    async def text(self, css: str) -> str:
        return str(await self._command("GET", f"/element/{await self.find(css)}/text"))

    async def title(self) -> str:
        return str(await self._command("GET", "/title"))


@asynccontextmanager
async def chromium(chromedriver: str) -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile, closed afterwards."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        async with httpx2.AsyncClient(base_url=chromedriver, timeout=60) as http:
            created = await http.post("/session", json={"capabilities": capabilities})
            assert created.status_code == 200, created.text
            session = created.json()["value"]["sessionId"]
            try:
                yield Browser(http, session)
            finally:
                await http.delete(f"/session/{session}")


def person_at(browser: Browser, name: str, seen: list[str]) -> Any:
    """A person with ``browser``: opens the page, reads it, types ``name``, presses the button."""

    async def person(url: str) -> None:
        await browser.open(url)
        seen.append(await browser.title())
        seen.append(await browser.text("dl"))
        await browser.type("input[name=name]", name)
        await browser.press("button[type=submit]")
        seen.append(await browser.text("h1"))

    return person


async def test_chromium_approves_a_delete_on_the_http_app(chromedriver, make_settings, sandbox):
    id = await seed_instance(sandbox, "database", "precious")
    settings = make_settings(transport="http", auth_token=TOKEN, confirm="human")
    seen: list[str] = []
    async with chromium(chromedriver) as browser, serving_mcp_http(settings, sandbox) as (url, runtime):
        runtime.approvals.lifetime = LIFETIME
        pages = PageClient(person=person_at(browser, "precious", seen))
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        async with http, Client(streamable_http_client(url, http_client=http), elicitation_callback=pages) as client:
            result = await client.call_tool("delete_database", {"id": id})
        await pages.finished()
    title, details, outcome = seen
    assert title == "Approve: delete PostgreSQL database 'precious'"
    assert "precious" in details and str(id) in details
    assert outcome == "Approved"
    assert result.structured_content["deleted"] is True and not sandbox.store.exists("database", id)


async def test_chromium_approves_a_delete_on_the_loopback_listener(chromedriver, make_settings, sandbox):
    """The stdio case: the pages are on a listener the server starts on demand (here in process, 2025-11-25)."""
    id = await seed_instance(sandbox, "redis", "sessions")
    server, _ = human_server(sandbox, make_settings(confirm="human"), LIFETIME)
    seen: list[str] = []
    async with chromium(chromedriver) as browser:
        pages = PageClient(person=person_at(browser, "sessions", seen))
        async with connect(server, "legacy", elicitation_callback=pages) as client:
            result = await client.call_tool("delete_redis", {"id": id})
        await pages.finished()
    assert seen[-1] == "Approved" and pages.urls[0].startswith("http://127.0.0.1:")
    assert result.structured_content["deleted"] is True and not sandbox.store.exists("redis", id)


async def test_a_mistyped_name_in_chromium_approves_nothing(chromedriver, make_settings, sandbox):
    id = await seed_instance(sandbox, "database", "precious")
    server, _ = human_server(sandbox, make_settings(confirm="human"), lifetime=3.0)
    seen: list[str] = []
    async with chromium(chromedriver) as browser:
        pages = PageClient(person=person_at(browser, "precius", seen))
        async with connect(server, elicitation_callback=pages) as client:
            result = await client.call_tool("delete_database", {"id": id})
        await pages.finished()
    assert seen[-1] == "Approve: delete PostgreSQL database 'precious'"  # the form again, saying why
    assert result.structured_content["deleted"] is False and sandbox.store.exists("database", id)
