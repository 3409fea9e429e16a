"""Health checks for orchestrators and load balancers: ``/healthz`` and ``/readyz``.

Probes come by the pod's address, carry no credentials and come often; so this layer sits outside
all the others (no Host check, no authentication), makes no upstream call, and answers nothing but
a status word.
"""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.responses import JSONResponse, Response

from redu_mcp.server.runtime import Runtime

#: Health checks for orchestrators (``Health``): served before any other layer, to anyone.
HEALTH_PATHS = ("/healthz", "/readyz")


class Health:
    """ASGI middleware: ``/healthz`` (the process serves: no upstream call) and ``/readyz`` (ready
    for traffic: settings valid, which they are once the app is built, and Redis reachable when one
    is configured), for orchestrators and load balancers. Nothing but a status word is answered; why
    a replica is not ready is in its log."""

    READY_FOR = 1.0  # seconds a readiness answer is reused: a flood of probes is not a flood of PINGs

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self._ready_until = -math.inf

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            response: Response = JSONResponse(
                {"status": "method not allowed"}, status_code=405, headers={"allow": "GET, HEAD"}
            )
        elif scope["path"] == "/healthz":
            response = JSONResponse({"status": "ok"}, headers={"cache-control": "no-store"})
        elif await self._ready():
            response = JSONResponse({"status": "ready"}, headers={"cache-control": "no-store"})
        else:
            response = JSONResponse({"status": "not ready"}, status_code=503, headers={"cache-control": "no-store"})
        await response(scope, receive, send)

    async def _ready(self) -> bool:
        shared = self.runtime.shared
        if shared is None or time.monotonic() < self._ready_until:
            return True
        if not await shared.ping():
            return False
        self._ready_until = time.monotonic() + self.READY_FOR
        return True
