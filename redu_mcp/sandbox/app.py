"""The HTTP face of the sandbox: the Redu API's paths, envelopes, auth and errors, on Starlette.

Plus a small control surface under ``/_sandbox`` (same key) so that a sandbox served on a port can
be given faults and asked what it received by a test in another process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from redu_mcp.api import KINDS, AnyKind, CreateBody
from redu_mcp.sandbox.faults import DroppedConnection, Fault
from redu_mcp.sandbox.store import Account, generate_password

#: A route's handler.
Endpoint = Callable[[Request], Awaitable[Response]]

if TYPE_CHECKING:
    from redu_mcp.sandbox import Sandbox

log = logging.getLogger("redu_mcp.sandbox")


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def build_app(sandbox: Sandbox) -> _Gate:
    store = sandbox.store

    def account_of(request: Request) -> Account:
        account: Account = request.state.account  # set by the gate for every authenticated request
        return account

    def page(request: Request, items: list[dict[str, Any]]) -> Response:
        """A list in the sandbox's envelope style, cut into pages of ``page_size``."""
        if sandbox.list_style == "bare":
            return JSONResponse(items)
        try:
            offset = int(request.query_params.get("cursor") or 0)
            if offset < 0:
                raise ValueError(offset)
        except ValueError:
            return error(400, "bad_request", "cursor: not a cursor this API issued")
        chunk = items[offset : offset + sandbox.page_size]
        next_offset = offset + sandbox.page_size
        cursor = str(next_offset) if next_offset < len(items) else None
        key = "items" if sandbox.list_style == "items" else request.url.path.rstrip("/").rsplit("/", 1)[-1]
        return JSONResponse({key: chunk, "next_cursor": cursor})

    async def me(request: Request) -> Response:
        return JSONResponse(account_of(request).as_json())

    def lookup(items: list[dict[str, Any]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return page(request, items)

        return endpoint

    def collection(kind: AnyKind) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            owner = account_of(request).id
            if request.method == "POST":
                return await create(request, kind, owner)
            records = sorted(store.owned(kind, owner), key=lambda r: r.public["id"])
            return page(request, [await store.view(r) for r in records])

        return endpoint

    async def create(request: Request, kind: AnyKind, owner: str) -> Response:
        if account_of(request).read_only:
            return error(403, "forbidden", "the API key does not have access to the requested resource")
        try:
            raw = await request.json()
        except ValueError:
            return error(400, "bad_request", "the request body is not JSON")
        try:
            body = kind.create_body.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return error(422, "validation_error", f"{where}: {first['msg']}")
        problem = unknown_reference(body)
        if problem:
            return error(422, "validation_error", problem)
        if any(r.public["name"] == body.name for r in store.owned(kind, owner)):
            return error(409, "conflict", f"an instance named '{body.name}' already exists")
        fields = body.model_dump(exclude={kind.password_field})
        password = kind.supplied_password(body) or generate_password()
        record = await store.create(kind, owner, public_shape(kind, fields), password)
        response = await store.view(record)
        response[kind.password_field] = password  # shown once, here only
        return JSONResponse(response, status_code=201)

    def unknown_reference(body: CreateBody) -> str | None:
        if body.flavor_id not in {f["id"] for f in store.flavors}:
            return f"flavor_id: unknown flavor '{body.flavor_id}'"
        if body.network_id not in {n["id"] for n in store.networks}:
            return f"network_id: unknown network '{body.network_id}'"
        if body.keypair_name not in {k["name"] for k in store.keypairs}:
            return f"keypair_name: unknown keypair '{body.keypair_name}'"
        unknown = set(body.security_group_names) - {g["name"] for g in store.security_groups}
        if unknown:
            return f"security_group_names: unknown security group '{sorted(unknown)[0]}'"
        return None

    def instance(kind: AnyKind) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            account = account_of(request)
            try:
                id = int(request.path_params["id"])
            except ValueError:
                return error(404, "not_found", "not found")
            record = store.find(kind, account.id, id)
            if record is None:
                return error(404, "not_found", f"{kind.collection} instance {id} not found")
            if request.method == "DELETE":
                if account.read_only:
                    return error(403, "forbidden", "the API key does not have access to the requested resource")
                await store.delete(record)
                return Response(status_code=204)
            return JSONResponse(await store.view(record))

        return endpoint

    async def control_faults(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.faults.clear()
            return Response(status_code=204)
        if request.method == "POST":
            try:
                fault = sandbox.faults.add(Fault(**(await request.json())))
            except (TypeError, ValueError) as exc:
                return error(400, "bad_request", f"not a fault: {exc}")
            return JSONResponse(fault.to_dict(), status_code=201)
        return JSONResponse([f.to_dict() for f in sandbox.faults.pending()])

    async def control_requests(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.requests.clear()
            sandbox.timed_requests.clear()
            return Response(status_code=204)
        return JSONResponse([{"method": m, "path": p, "at": at} for at, m, p in sandbox.timed_requests])

    async def control_fail_names(request: Request) -> Response:
        store.fail_names.update(await request.json())
        return JSONResponse(sorted(store.fail_names))

    routes = [
        Route("/v1/me", me),
        Route("/v1/flavors", lookup(store.flavors)),
        Route("/v1/networks", lookup(store.networks)),
        Route("/v1/keypairs", lookup(store.keypairs)),
        Route("/v1/security_groups", lookup(store.security_groups)),
        *(Route(f"/v1/{kind.collection}", collection(kind), methods=["GET", "POST"]) for kind in KINDS.values()),
        *(Route(f"/v1/{kind.collection}/{{id}}", instance(kind), methods=["GET", "DELETE"]) for kind in KINDS.values()),
        Route("/_sandbox/faults", control_faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/requests", control_requests, methods=["GET", "DELETE"]),
        Route("/_sandbox/fail-names", control_fail_names, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    return _Gate(app, sandbox)


def public_shape(kind: AnyKind, fields: dict[str, Any]) -> dict[str, Any]:
    """What the API shows for an instance: the request's fields, renamed where the API renames them."""
    shown = {k: v for k, v in fields.items() if k not in ("flavor_id", "network_id", "keypair_name", "version")}
    shown.update(flavor_id=fields["flavor_id"], network_id=fields["network_id"], port=kind.default_port)
    shown[kind.version_field] = fields["version"]  # PostgreSQL: the request says version, the response db_version
    return shown


class _Gate:
    """ASGI wrapper: record the request, check the key, then play out any fault around the app."""

    def __init__(self, app: Starlette, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        request = Request(scope, receive)
        if not path.startswith("/_sandbox/"):
            self.sandbox.requests.append((method, path))
            self.sandbox.timed_requests.append((time.monotonic(), method, path))
        account = self.sandbox.accounts.get(request.headers.get("x-api-key", ""))
        if account is None:
            await error(401, "unauthorized", "Invalid API key")(scope, receive, send)
            return
        scope.setdefault("state", {})["account"] = account
        fault = None if path.startswith("/_sandbox/") else self.sandbox.faults.take(method, path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        await self._play(fault, scope, receive, send)

    async def _play(self, fault: Fault, scope: dict[str, Any], receive: Any, send: Any) -> None:
        log.info("fault on %s %s: %s", scope["method"], scope["path"], fault)
        applied: list[Any] = []  # the real answer of an applied request, replayed if nothing else fails
        if fault.apply:
            await self.app(scope, receive, _collect(applied))
        if fault.delay:
            await anyio.sleep(fault.delay)
        if fault.timeout:
            await _until_disconnect(receive)  # the client gives up first
            return
        if fault.drop:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
            raise DroppedConnection("sandbox fault: connection dropped")
        if fault.body is not None:
            await malformed(fault.body, fault.status or 200)(scope, receive, send)
            return
        if fault.status is not None:
            headers = {"retry-after": fault.retry_after} if fault.retry_after else None
            code = STATUS_CODES.get(fault.status, "error")
            message = fault.message or f"sandbox fault: HTTP {fault.status}"
            await error(fault.status, code, message, headers)(scope, receive, send)
            return
        if fault.apply:  # applied, then answered normally after the delay (the body is already read)
            for message in applied:
                await send(message)
            return
        await self.app(scope, receive, send)  # a pure delay: answer normally afterwards


def _collect(messages: list[Any]) -> Any:
    async def send(message: Any) -> None:
        messages.append(message)

    return send


async def _until_disconnect(receive: Any) -> None:
    """Never answer: wait until the client goes away (on a real server) or is cancelled (in-process)."""
    with anyio.move_on_after(3600):
        while (await receive())["type"] != "http.disconnect":
            pass


def malformed(kind: str, status: int) -> Response:
    if kind == "html":
        page = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
        return Response(page, status_code=status, media_type="text/html")
    if kind == "not-json":
        return Response("upstream said: {oops", status_code=status, media_type="application/json")
    if kind == "wrong-shape":
        return JSONResponse({"unexpected": ["shape"]}, status_code=status)
    return Response(b"", status_code=status, media_type="application/json")
