"""``ReduClient``: a typed async client for the Redu public API.

One pooled ``httpx2.AsyncClient`` underneath; ``x-api-key`` auth; lists in any of the shapes the API
has used, followed across ``next_cursor`` pages; every failure raised as a ``ReduError`` that names
the endpoint and never the key. Usable on its own::

    from redu_mcp.api import ReduClient

    async with ReduClient(api_key="...") as redu:
        for db in await redu.list_databases():
            print(db.name, db.status)
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final, TypeVar

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from redu_mcp.api import _errors as errors
from redu_mcp.api import _telemetry as telemetry
from redu_mcp.api._deadlines import time_left
from redu_mcp.api._keys import api_key_problem
from redu_mcp.api._kinds import DATABASE, REDIS, Kind
from redu_mcp.api._models import (
    CreateBody,
    CreatedDatabase,
    CreatedRedis,
    Database,
    DatabaseCreate,
    Flavor,
    Instance,
    Keypair,
    Network,
    Redis,
    RedisCreate,
    SecurityGroup,
    User,
)
from redu_mcp.api._retry import RetryPolicy, call_with_retries, parse_retry_after
from redu_mcp.api._scrub import remember_secret, scrub

log = logging.getLogger("redu_mcp.api")  # one logger for the library, like httpx2's
M = TypeVar("M", bound=BaseModel)
# Per call: the kind's model types decide what a call returns (Kind itself is covariant in them).
InstanceT = TypeVar("InstanceT", bound=Instance)
CreatedT = TypeVar("CreatedT", bound=Instance)
BodyT = TypeVar("BodyT", bound=CreateBody)

DEFAULT_BASE_URL: Final = "https://api.redu.cloud/v1"
DEFAULT_TIMEOUT: Final = httpx2.Timeout(20.0, connect=5.0)
MAX_PAGES: Final = 100  # a guard against a cursor that never ends
ERROR_TEXT_LIMIT: Final = 300  # characters of an API error text kept (after scrubbing)


class ReduClient:
    """Async client for the Redu API. Share one per process; ``with_api_key`` makes per-user views."""

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx2.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        http: httpx2.AsyncClient | None = None,
    ) -> None:
        self._api_key = api_key or None
        #: Why the key cannot be one (a placeholder, characters no key has): raised at each request.
        self._key_problem = api_key_problem(self._api_key) if self._api_key else None
        if http is None:  # a client of its own, with its configured key: no log line will hold it
            remember_secret(self._api_key)
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._owns_http = http is None
        self._http = http or httpx2.AsyncClient(
            base_url=self.base_url + "/",
            timeout=timeout,
            transport=transport,
            headers={"accept": "application/json", "user-agent": "redu-mcp"},
            follow_redirects=False,  # never carry the key to wherever a redirect points
        )
        url = self._http.base_url
        #: Where requests go, as telemetry names it (host and port: never the full URL).
        self._server = (url.host, url.port or (443 if url.scheme == "https" else 80))

    def __repr__(self) -> str:
        return f"ReduClient(base_url={self.base_url!r}, api_key={'set' if self._api_key else 'unset'})"

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def with_api_key(self, api_key: str) -> ReduClient:
        """A client that sends ``api_key`` instead, over the same connection pool (not closed by it)."""
        remember_secret(api_key, callers_key=True)  # a caller's key: kept out of logs too
        return ReduClient(api_key, base_url=self.base_url, retry=self.retry, http=self._http)

    def with_retry(self, retry: RetryPolicy) -> ReduClient:
        """A client with another retry policy, over the same key and pool (not closed by it)."""
        return ReduClient(self._api_key, base_url=self.base_url, retry=retry, http=self._http)

    async def __aenter__(self) -> ReduClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- endpoints: account and lookups ---------------------------------------------------------

    async def me(self) -> User:
        return await self._get_one("me", User)

    async def list_flavors(self) -> list[Flavor]:
        return await self._list("flavors", Flavor)

    async def list_networks(self) -> list[Network]:
        return await self._list("networks", Network)

    async def list_keypairs(self) -> list[Keypair]:
        return await self._list("keypairs", Keypair, singular="keypair")

    async def list_security_groups(self) -> list[SecurityGroup]:
        return await self._list("security_groups", SecurityGroup, singular="security_group")

    # --- endpoints: instances, one implementation for both kinds ----------------------------------

    async def list_instances(
        self, kind: Kind[InstanceT, CreatedT, BodyT], *, limit: int | None = None
    ) -> list[InstanceT]:
        return await self._list(kind.collection, kind.model, limit=limit)

    async def get_instance(self, kind: Kind[InstanceT, CreatedT, BodyT], id: int) -> InstanceT:
        return await self._get_one(f"{kind.collection}/{int(id)}", kind.model)

    async def create_instance(self, kind: Kind[InstanceT, CreatedT, BodyT], body: BodyT) -> CreatedT:
        """POST a create. Sent exactly once: never retried here, since it may have been applied."""
        if not isinstance(body, kind.create_body):
            raise TypeError(f"expected {kind.create_body.__name__}, got {type(body).__name__}")
        endpoint = _endpoint("POST", kind.collection)
        password = kind.supplied_password(body)
        response = await self._send("POST", kind.collection, json=body.to_json(), secrets=(password,))
        return _parse_model(kind.created_model, _json_of(response, endpoint), endpoint, response)

    async def delete_instance(self, kind: Kind[InstanceT, CreatedT, BodyT], id: int) -> int:
        """DELETE, retried on passing failures. Returns the status that settled it: 204 as documented,
        another 2xx (whose body is not read), or 404 when a retried attempt found it already gone (the
        earlier attempt, whose answer was lost, deleted it). A first-attempt 404 is raised."""
        path = f"{kind.collection}/{int(id)}"

        async def attempt(n: int) -> int:
            try:
                response = await self._send("DELETE", path, attempt=n)
            except errors.NotFoundError:
                if n == 1:
                    raise
                log.info("DELETE /%s answered 404 after a retry: the earlier attempt deleted it", path)
                return 404
            return response.status_code

        return await call_with_retries(self.retry, attempt, describe=f"DELETE /{path}")

    # Named per-endpoint methods, for readers of the API docs and library users.
    async def list_databases(self, *, limit: int | None = None) -> list[Database]:
        return await self.list_instances(DATABASE, limit=limit)

    async def get_database(self, id: int) -> Database:
        return await self.get_instance(DATABASE, id)

    async def create_database(self, body: DatabaseCreate) -> CreatedDatabase:
        return await self.create_instance(DATABASE, body)

    async def delete_database(self, id: int) -> None:
        await self.delete_instance(DATABASE, id)

    async def list_redis(self, *, limit: int | None = None) -> list[Redis]:
        return await self.list_instances(REDIS, limit=limit)

    async def get_redis(self, id: int) -> Redis:
        return await self.get_instance(REDIS, id)

    async def create_redis(self, body: RedisCreate) -> CreatedRedis:
        return await self.create_instance(REDIS, body)

    async def delete_redis(self, id: int) -> None:
        await self.delete_instance(REDIS, id)

    # --- plumbing -----------------------------------------------------------------------------------

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> tuple[Any, httpx2.Response]:
        async def attempt(n: int) -> tuple[Any, httpx2.Response]:
            response = await self._send("GET", path, attempt=n, params=params)
            return _json_of(response, _endpoint("GET", path)), response

        return await call_with_retries(self.retry, attempt, describe=f"GET /{path}")

    async def _get_one(self, path: str, model: type[M]) -> M:
        data, response = await self._get_json(path)
        return _parse_model(model, data, _endpoint("GET", path), response)

    async def _list(
        self, path: str, model: type[M], *, singular: str | None = None, limit: int | None = None
    ) -> list[M]:
        endpoint = _endpoint("GET", path)
        items: list[M] = []
        cursor: str | None = None
        seen_cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            data, response = await self._get_json(path, {"cursor": cursor} if cursor else None)
            raw_items, cursor = _split_page(data, plural=path.rsplit("/", 1)[-1], endpoint=endpoint, response=response)
            for raw in raw_items:
                items.append(_parse_model(model, _unwrap(raw, singular), endpoint, response))
            if limit is not None and len(items) >= limit:
                return items[:limit]
            if not cursor or cursor in seen_cursors:
                return items
            seen_cursors.add(cursor)
        log.warning("%s: stopped following next_cursor after %d pages", endpoint, MAX_PAGES)
        return items

    async def _send(
        self, method: str, path: str, *, attempt: int = 1, secrets: tuple[str | None, ...] = (), **kwargs: Any
    ) -> httpx2.Response:
        """One HTTP exchange, mapped to our exceptions. Never logs or raises the key, nor ``secrets``
        (the passwords in the request body), should the API's error text echo them. ``attempt``
        (1, 2, … under a retry) is for telemetry: each exchange is one span (``_telemetry.Exchange``).

        Under a deadline (``redu_mcp.api._deadlines.within``) the exchange is clipped to the time left: its
        timeouts shrink to fit, and whatever still runs at the deadline is cut off."""
        endpoint = _endpoint(method, path)
        if self._api_key is None:
            raise errors.NotConfiguredError("no Redu API key is configured", endpoint=endpoint)
        if self._key_problem is not None:
            raise errors.MalformedKeyError(f"the Redu API key {self._key_problem}", endpoint=endpoint)
        left = time_left()
        if left is not None:
            if left <= 0:
                raise errors.TransportError("not sent: this call has no time left", endpoint=endpoint)
            kwargs["timeout"] = _clipped(self._http.timeout, left)
        started = time.perf_counter()
        host, port = self._server
        with telemetry.Exchange(method, path, attempt=attempt, host=host, port=port) as exchange:
            try:
                with anyio.fail_after(left):
                    response = await self._http.request(method, path, headers={"x-api-key": self._api_key}, **kwargs)
            except httpx2.TimeoutException as exc:
                exchange.failed(exc)
                # A connect or pool timeout means nothing was sent; a read/write timeout may have been applied.
                sent = not isinstance(exc, (httpx2.ConnectTimeout, httpx2.PoolTimeout))
                raise errors.TransportError(
                    f"timed out ({type(exc).__name__}){_cut_note(self._http.timeout, left)}",
                    endpoint=endpoint,
                    maybe_applied=sent,
                ) from None
            except TimeoutError as exc:  # our own deadline (anyio), not an httpx2 timeout
                exchange.failed(exc)
                within_ = "in time" if left is None else f"within the {left:.1f} s this call had left"
                raise errors.TransportError(f"no answer {within_}", endpoint=endpoint, maybe_applied=True) from None
            except httpx2.ConnectError as exc:
                exchange.failed(exc)
                raise errors.TransportError("could not connect to the Redu API", endpoint=endpoint) from None
            except httpx2.TransportError as exc:
                exchange.failed(exc)
                raise errors.TransportError(
                    f"the connection failed before a complete answer ({type(exc).__name__})",
                    endpoint=endpoint,
                    maybe_applied=True,
                ) from None
            except httpx2.RequestError as exc:  # e.g. a body that cannot be decoded: an answer came, unusable
                exchange.failed(exc)
                raise errors.TransportError(
                    f"unusable answer ({type(exc).__name__})", endpoint=endpoint, maybe_applied=True
                ) from None
            exchange.answered(response.status_code)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug("%s -> %d (%.0f ms)", endpoint, response.status_code, elapsed_ms)
        if response.is_success:
            return response
        raise self._error_from(response, endpoint, secrets)

    def _error_from(
        self, response: httpx2.Response, endpoint: str, secrets: tuple[str | None, ...] = ()
    ) -> errors.APIStatusError:
        code, message = _error_text(response)
        # Belt and braces: should any body ever echo the key or a password, it travels no further.
        message = scrub(message, (self._api_key, *secrets), limit=ERROR_TEXT_LIMIT)
        code = scrub(code, (self._api_key, *secrets), limit=64) if code else None
        return errors.error_for_status(response.status_code)(
            message,
            endpoint=endpoint,
            status=response.status_code,
            code=code,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )


def _endpoint(method: str, path: str) -> str:
    return f"{method} /{path.lstrip('/')}"


def _clipped(timeout: httpx2.Timeout, left: float) -> httpx2.Timeout:
    """The client's timeouts, none longer than the ``left`` seconds this call has."""

    def clip(value: float | None) -> float:
        return left if value is None else min(value, left)

    return httpx2.Timeout(
        connect=clip(timeout.connect), read=clip(timeout.read), write=clip(timeout.write), pool=clip(timeout.pool)
    )


def _cut_note(timeout: httpx2.Timeout, left: float | None) -> str:
    """Say so when it was the call's deadline, not the client's own timeout, that cut the exchange short."""
    if left is None or (timeout.read is not None and timeout.read <= left):
        return ""
    return f", cut off with the {left:.1f} s this call had left"


def _json_of(response: httpx2.Response, endpoint: str) -> Any:
    if response.status_code == 204 or not response.content:
        raise errors.ResponseFormatError(
            f"expected JSON, got an empty body ({response.status_code} {response.reason_phrase})",
            endpoint=endpoint,
            status=response.status_code,
        )
    try:
        return response.json()
    except ValueError:
        raise errors.ResponseFormatError(
            f"expected JSON, got {_describe_body(response)}",
            endpoint=endpoint,
            status=response.status_code,
        ) from None


def _looks_like_html(response: httpx2.Response) -> bool:
    """A web page rather than the API's JSON: what proxies and load balancers answer with."""
    return "html" in response.headers.get("content-type", "") or response.text.lstrip().lower().startswith(
        ("<!doctype", "<html")
    )


def _describe_body(response: httpx2.Response) -> str:
    content_type = response.headers.get("content-type", "no content type")
    if _looks_like_html(response):
        return "an HTML page (probably from a proxy or load balancer)"
    return f"a body that is not valid JSON ({len(response.content)} bytes of {content_type})"


def _error_text(response: httpx2.Response) -> tuple[str | None, str]:
    """The API's ``{"error": {"code", "message"}}`` when present, else a short description of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            return (str(code) if code else None), str(message or response.reason_phrase)
        if isinstance(error, str):
            return None, error
        if isinstance(body.get("message"), str):
            return None, body["message"]
        if isinstance(body.get("detail"), str):
            return None, body["detail"]
    if body is None and response.content:
        if _looks_like_html(response):
            return None, f"{response.reason_phrase} (an HTML error page, probably from a proxy)"
        return None, response.text.strip()  # shortened by the caller, after scrubbing
    return None, response.reason_phrase or "error"


def _split_page(data: Any, *, plural: str, endpoint: str, response: httpx2.Response) -> tuple[list[Any], str | None]:
    """Items and the next cursor from a bare array, ``{"items": [...]}`` or ``{"<plural>": [...]}``."""
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict):
        for key in ("items", plural, "data", "results"):
            if isinstance(data.get(key), list):
                cursor = data.get("next_cursor")
                return data[key], (str(cursor) if cursor not in (None, "") else None)
    raise errors.ResponseFormatError(
        f"expected a list (a JSON array or an object with 'items'), got {type(data).__name__}",
        endpoint=endpoint,
        status=response.status_code,
    )


def _unwrap(raw: Any, singular: str | None) -> Any:
    """Older endpoints wrap each item: ``[{"keypair": {...}}]``."""
    if singular and isinstance(raw, dict) and len(raw) == 1 and isinstance(raw.get(singular), dict):
        return raw[singular]
    return raw


def _parse_model(model: type[M], data: Any, endpoint: str, response: httpx2.Response) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Field locations and reasons only: input values may hold secrets.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)[:5]
        )
        raise errors.ResponseFormatError(
            f"unexpected response shape for {model.__name__} ({problems})",
            endpoint=endpoint,
            status=response.status_code,
        ) from None
