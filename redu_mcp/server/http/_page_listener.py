"""The loopback listener that serves confirmation pages when the server has no HTTP app of its own
(stdio, in-process): started when the first page is opened, stopped once the last page it served has
expired, or when the server closes.

It listens on ``127.0.0.1`` on a port the system picks, answers only ``Host: 127.0.0.1:<port>`` or
``localhost:<port>`` (a page another site rebinds to this address is refused, as on the HTTP app),
keeps no access log (a page's address is a capability), and leaves the process's signal handlers
alone: it is a guest in a stdio server, whose client decides when the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import anyio

from redu_mcp.server.http._guards import CheckHostAndOrigin, HostRules
from redu_mcp.server.http._pages import ConfirmationPages

if TYPE_CHECKING:
    import uvicorn

    from redu_mcp.server.approvals import Approvals

log = logging.getLogger("redu_mcp.server.http")

PREFIX: Final = "/confirm/"
#: Seconds the listener stays up after its last page expired (a person's last POST completes).
GRACE: Final = 5.0
TICK: Final = 0.5


def _server_class() -> type[uvicorn.Server]:
    import uvicorn

    class Guest(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the stdio server's own handlers stay in place

    return Guest


class LoopbackPages:
    def __init__(self, approvals: Approvals) -> None:
        self.approvals = approvals
        self._until = 0.0
        self._base: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._server: uvicorn.Server | None = None

    async def base_url(self, until: float) -> str:
        """The pages' base URL (``http://127.0.0.1:<port>/confirm/``), the listener running until ``until``
        (wall-clock seconds, as the approvals count them) and a little after."""
        self._until = max(self._until, until + GRACE)
        if self._task is None or self._task.done():
            await self._start()
        assert self._base is not None
        return self._base

    async def _start(self) -> None:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        rules = HostRules(
            check_host=True,
            hosts=(f"127.0.0.1:{port}", f"localhost:{port}"),
            origins=(f"http://127.0.0.1:{port}", f"http://localhost:{port}"),
        )
        app = CheckHostAndOrigin(ConfirmationPages(self.approvals, PREFIX), rules)
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        server = _server_class()(config)
        self._server = server
        self._task = asyncio.get_running_loop().create_task(self._serve(server, sock))
        with anyio.fail_after(10):
            while not server.started:
                if self._task.done():
                    self._task.result()  # raises why it could not start
                await anyio.sleep(0.01)
        self._base = f"http://127.0.0.1:{port}{PREFIX}"
        log.info("serving confirmation pages on a loopback port (%d) until the last one expires", port)

    async def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [sock])
                while self.approvals.clock() < self._until and not server.should_exit:
                    await anyio.sleep(TICK)
                server.should_exit = True
        finally:
            sock.close()

    async def aclose(self) -> None:
        task, server = self._task, self._server
        self._task = self._server = None
        if server is not None:
            server.should_exit = True
        if task is not None:
            with contextlib.suppress(Exception):
                await task
