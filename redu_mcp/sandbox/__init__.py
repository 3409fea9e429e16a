"""An emulator of the Redu public API, for tests, the demo and anyone without an account.

In-process (no port)::

    sandbox = Sandbox(provisioning_seconds=0.5)
    async with sandbox.client() as redu:      # a ReduClient wired to the emulator
        ...
    sandbox.faults.add(method="POST", path="/v1/databases", status=502, apply=True)

Standalone: ``redu-mcp sandbox --port 8080`` (see ``redu_mcp.sandbox.serve``).

Names starting with ``fail-`` end in status ``error`` instead of ``ready``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx2

from redu_mcp.api import ReduClient
from redu_mcp.sandbox.faults import DroppedConnection, Fault, FaultPlan
from redu_mcp.sandbox.store import FAIL_PREFIX, Account, ClockProvisioner, Provisioner, Store

DEFAULT_API_KEY = "sandbox-key"
SANDBOX_BASE_URL = "http://sandbox.redu.invalid/v1"  # any host reaches the in-process app

ListStyle = Literal["items", "plural", "bare"]


class Sandbox:
    """The emulated API: its state, its fault plan, and the ASGI app that serves both."""

    def __init__(
        self,
        *,
        api_keys: dict[str, Account] | None = None,
        provisioning_seconds: float = 3.0,
        page_size: int = 50,
        list_style: ListStyle = "items",
        clock: Callable[[], float] = time.monotonic,
        provisioner: Provisioner | None = None,
    ) -> None:
        self.accounts = api_keys or {DEFAULT_API_KEY: Account("usr_sandbox", "sandbox", "sandbox@example.com")}
        self.page_size = page_size
        self.list_style = list_style
        self.faults = FaultPlan()
        #: This emulator's own address (one host per emulator): servers sharing state through Redis
        #: tell emulators apart by it, as they tell deployments apart by their API's URL.
        self.base_url = f"http://{secrets.token_hex(6)}.sandbox.redu.invalid/v1"
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API request received
        #: (time.monotonic() on arrival, method, path) of the same requests: ``GET /_sandbox/requests``
        #: serves it, so that a test in another process can tell how far apart two requests came.
        self.timed_requests: list[tuple[float, str, str]] = []
        self.store = Store(self.accounts, provisioner or ClockProvisioner(provisioning_seconds, clock), clock)
        from redu_mcp.sandbox.app import build_app

        self.app = build_app(self)

    @property
    def default_key(self) -> str:
        return next(iter(self.accounts))

    def transport(self) -> httpx2.AsyncBaseTransport:
        """An httpx2 transport that calls the app in-process and behaves like a network on faults."""
        return SandboxTransport(self.app)

    def client(self, api_key: str | None = None, **kwargs: Any) -> ReduClient:
        """A ``ReduClient`` talking to this sandbox in-process."""
        key = self.default_key if api_key is None else api_key
        return ReduClient(key, base_url=self.base_url, transport=self.transport(), **kwargs)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many API requests matched (for asserting no retry storms and no duplicate POSTs)."""
        return sum(1 for m, p in self.requests if (method is None or m == method) and (path is None or p == path))

    async def aclose(self) -> None:
        await self.store.provisioner.aclose()


class SandboxTransport(httpx2.AsyncBaseTransport):
    """``ASGITransport`` plus what a socket would do: time out per the request's timeout, and turn a
    dropped connection into the same ``httpx2`` error a real one gives."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx2.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        import anyio

        read_timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            with anyio.fail_after(read_timeout):
                return await self._inner.handle_async_request(request)
        except TimeoutError:
            raise httpx2.ReadTimeout("timed out waiting for the sandbox", request=request) from None
        except DroppedConnection:
            raise httpx2.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=request
            ) from None


__all__ = [
    "DEFAULT_API_KEY",
    "FAIL_PREFIX",
    "SANDBOX_BASE_URL",
    "Account",
    "Fault",
    "FaultPlan",
    "Sandbox",
]
