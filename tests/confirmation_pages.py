"""A person at a confirmation page (``--confirm human``), and a client that is asked to open pages.

The person reads the page, types the name and presses the button over plain HTTP, sending what a
browser sends with a form post from the page itself (its ``Origin``); the browser test does the same
with a real Chromium. ``PageClient`` is a client's elicitation callback: it records each URL request
and answers it, and may hand the page to a person, who acts while the call waits, as a user would
once the client opened it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp.types import ElicitRequestURLParams, ElicitResult

from redu_mcp.sandbox import Sandbox
from redu_mcp.server import Settings, build_server
from redu_mcp.server.assembly import runtime_for
from redu_mcp.server.runtime import Runtime
from tests.helpers import FAST_RETRY

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
#: A page's life in the tests where nobody uses it: the call waits this long before it says so.
SHORT_LIFE = 1.0

Person = Callable[[str], Awaitable[Any]]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def read_page(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.get(url)


def csrf_of(page: httpx2.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


async def post_page(url: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> httpx2.Response:
    """A form post to the page; by default with the ``Origin`` a browser sends from the page itself."""
    async with httpx2.AsyncClient() as http:
        return await http.post(url, data=fields, headers={"origin": origin_of(url), **(headers or {})})


async def use_page(url: str, name: str) -> httpx2.Response:
    """What a person does: open the page, type ``name``, press the button."""
    page = await read_page(url)
    assert page.status_code == 200, page.text
    return await post_page(url, {"csrf": csrf_of(page), "name": name})


def typing(name: str) -> Person:
    """A person who types ``name`` on every page they are shown."""

    async def person(url: str) -> httpx2.Response:
        return await use_page(url, name)

    return person


class PageClient:
    """An elicitation callback that shows URL requests (recording them) and answers ``action``; a
    ``person`` acts on each page in the background meanwhile (``finished()`` waits for them)."""

    def __init__(self, action: str = "accept", person: Person | None = None) -> None:
        self.action = action
        self.person = person
        self.urls: list[str] = []
        self.messages: list[str] = []
        self.forms = 0
        self._tasks: list[asyncio.Task[Any]] = []

    async def __call__(self, context: Any, params: Any) -> ElicitResult:
        if not isinstance(params, ElicitRequestURLParams):
            self.forms += 1  # a form would let the client approve: under human none is ever asked
            return ElicitResult(action="accept", content={"confirm": True})
        self.urls.append(params.url)
        self.messages.append(params.message)
        if self.person is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self.person(params.url)))
        return ElicitResult(action=self.action)

    async def finished(self) -> list[Any]:
        """What each person did since the last call (their tasks' results)."""
        tasks, self._tasks = self._tasks, []
        return list(await asyncio.gather(*tasks))


def human_server(sandbox: Sandbox, settings: Settings, lifetime: float | None = None) -> tuple[Any, Runtime]:
    """A server under ``--confirm human`` on ``sandbox``, its pages living ``lifetime`` seconds."""
    runtime = runtime_for(settings, client=sandbox.client(retry=FAST_RETRY))
    if lifetime is not None:
        runtime.approvals.lifetime = lifetime
    return build_server(settings, runtime=runtime), runtime
