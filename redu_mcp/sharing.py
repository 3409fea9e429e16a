"""The Redis connection through which replicas share state (``REDU_MCP_REDIS_URL``).

What is shared, and by whom: the status board's poll leases and snapshots
(``redu_mcp.provisioning.shared_board``: one upstream poll per instance per interval across
replicas), and on the HTTP side the verified-key cache and the per-principal limits
(``redu_mcp.server.http._shared_limits``). This module only holds the connection and the rules every
use of it follows:

* **Never in the way.** Every call is time-boxed (connect 0.5 s, command 0.75 s, the whole call
  1.5 s); any failure raises ``SharedStateUnavailable`` and the caller does what one replica alone
  would do, for the rest of that call. After a failure Redis is left alone for ``RETRY_AFTER``
  seconds (no request pays a timeout during an outage), then tried again.
* **Quiet.** One warning a minute while Redis is unreachable (with how many failures were held
  back), one line when it is back. Never the URL's password: the log names host, port and db.
* **Nothing secret in Redis, nothing unauthenticated from it.** Key names carry keyed hashes of
  keys, tokens, session ids and addresses (``Sealer.tag``: HMAC with the state key), never the
  values nor a bare hash someone could test guesses against. Every value a replica writes is sealed
  (``Sealer.seal``: HMAC-SHA256 with the state key, bound to the Redis key it is stored under, so a
  value copied to another key is refused), size-capped, and read back only through ``Sealer.unseal``
  and a parse that refuses deep nesting (``bounded_json``); anything else is discarded with one
  warning a minute (``SharedRedis.discarded``) and the caller does what one replica alone would do.
  Sharing therefore needs the state key on every replica (``REDU_MCP_STATE_KEY``): a replica without
  it could not read a value another wrote, so the settings refuse a Redis URL without one.
* **Lazy.** ``redis`` (a core dependency; the extra ``redu-mcp[redis]`` is kept as an alias) is
  imported only when a URL is configured: ``prepare()`` at start-up of the HTTP server, or the first call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import anyio

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX: Final = "redu-mcp"
#: URL schemes redis-py understands.
SCHEMES: Final = ("redis", "rediss", "unix")


class SharedStateUnavailable(Exception):
    """Redis could not be used for this call (down, slow, refused): fall back to local state."""


class Unsealed(ValueError):
    """A value from Redis that this deployment did not write there (or that is not what it should be)."""


_SEAL_INFO: Final = b"redu-mcp/shared-state/seal/v1"
_NAME_INFO: Final = b"redu-mcp/shared-state/names/v1"
_SEAL_VERSION: Final = "s1"


def _derive(key: str, info: bytes) -> bytes:
    return hmac.new(key.encode("utf-8"), info, hashlib.sha256).digest()


class Sealer:
    """Authenticates what replicas share, with the state key ring (``REDU_MCP_STATE_KEY``).

    The first key seals and names; every key unseals (rotation: ``new,old`` until the values sealed
    with the old key have expired). Keys for sealing and naming are derived from the state key, apart
    from the SDK's own use of it for request state."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("a Sealer needs at least one key")
        self._ring: dict[str, bytes] = {}
        for key in keys:
            sealing = _derive(key, _SEAL_INFO)
            self._ring.setdefault(hashlib.sha256(sealing).hexdigest()[:8], sealing)
        self._kid = next(iter(self._ring))
        self._naming = _derive(keys[0], _NAME_INFO)

    @classmethod
    def ephemeral(cls) -> Sealer:
        """A key of this process only: nothing it seals can be read by another process."""
        return cls([secrets.token_hex(32)])

    def tag(self, value: str, length: int = 32) -> str:
        """A keyed, non-reversible tag for ``value`` (a key, a token, a session id) in Redis key names."""
        mac = hmac.new(self._naming, value.encode("utf-8", "surrogateescape"), hashlib.sha256)
        return mac.hexdigest()[:length]

    def _mac(self, key: bytes, name: str, payload: str) -> str:
        message = b"\0".join((_SEAL_VERSION.encode(), name.encode(), payload.encode("utf-8", "surrogateescape")))
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def seal(self, name: str, payload: str) -> str:
        """``payload`` sealed for the Redis key ``name``."""
        return f"{_SEAL_VERSION}.{self._kid}.{self._mac(self._ring[self._kid], name, payload)}.{payload}"

    def unseal(self, name: str, value: object, max_chars: int) -> str:
        """The payload of a value sealed for ``name``; ``Unsealed`` (with a short reason) otherwise."""
        if not isinstance(value, str):
            raise Unsealed("not a string")
        if len(value) > max_chars:
            raise Unsealed(f"larger than {max_chars} characters")
        version, _, rest = value.partition(".")
        kid, _, rest = rest.partition(".")
        mac, _, payload = rest.partition(".")
        key = self._ring.get(kid)
        if version != _SEAL_VERSION or key is None:
            raise Unsealed("not sealed with a key of this deployment")
        if not hmac.compare_digest(mac, self._mac(key, name, payload)):
            raise Unsealed("its seal does not match (changed, or written for another key)")
        return payload


def bounded_json(text: str, max_depth: int = 8) -> Any:
    """``json.loads(text)`` for text nested at most ``max_depth`` deep (``ValueError`` beyond: no
    ``RecursionError`` however deep a value someone wrote)."""
    depth = 0
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth}")
        elif character in "]}":
            depth -= 1
    return json.loads(text)


def describe_url(url: str) -> str:
    """``host:port/db`` of a Redis URL, for logs: never the user name or the password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return f"unix:{parts.path}"
        host = parts.hostname or "localhost"
        db = parts.path.strip("/") or "0"
        return f"{host}:{parts.port or 6379}/{db}"
    except ValueError:
        return "(unreadable URL)"


def redis_password(url: str | None) -> str | None:
    """The password in a Redis URL, if any (so the log scrubber can know it)."""
    try:
        return urlsplit(url).password if url else None
    except ValueError:
        return None


def check_url(url: str) -> str:
    """``url`` if redis-py can use it; the error never repeats the URL (it may hold a password)."""
    try:
        parts = urlsplit(url.strip())
        scheme_ok = parts.scheme in SCHEMES and (parts.scheme == "unix" or bool(parts.hostname))
        _ = parts.port  # raises on a bad port
    except ValueError:
        scheme_ok = False
    if not scheme_ok:
        raise ValueError(
            "REDU_MCP_REDIS_URL is not a Redis URL: use redis://[:password@]host[:port][/db], rediss://… (TLS) "
            "or unix:///path/to/redis.sock"
        )
    return url.strip()


class SharedRedis:
    """One lazily made ``redis.asyncio`` client with a blocking pool, and the fail-soft rules above."""

    CONNECT_TIMEOUT: Final = 0.5
    COMMAND_TIMEOUT: Final = 0.75
    CALL_TIMEOUT: Final = 1.5  # a whole call: waiting for a pooled connection, connecting, the command
    MAX_CONNECTIONS: Final = 100  # per replica; a call waits up to COMMAND_TIMEOUT for a free one
    RETRY_AFTER: Final = 5.0  # seconds Redis is left alone after a failure
    WARN_EVERY: Final = 60.0

    def __init__(
        self, url: str, *, namespace: str, sealer: Sealer, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._url = url
        self.sealer = sealer
        self.where = describe_url(url)
        self.namespace = namespace
        self.clock = clock
        self._client: Any = None
        self._loop: object = None  # the event loop the client's connections belong to
        self._scripts: dict[str, Any] = {}
        self._down_until = -math.inf
        self._down = False
        self._warned_at = -math.inf
        self._held_back = 0
        self._discard_warned: dict[str, float] = {}

    def key(self, *parts: str) -> str:
        """``redu-mcp:<namespace>:<part>:…``: every key this deployment uses."""
        return ":".join((PREFIX, self.namespace, *parts))

    @staticmethod
    def prepare() -> None:
        """Import ``redis`` now (≈ 0.15–0.3 s), at start-up rather than inside the first request."""
        import redis.asyncio  # noqa: F401

    @property
    def available(self) -> bool:
        """False while Redis is being left alone after a failure."""
        return self.clock() >= self._down_until

    def _redis(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import redis.asyncio as aredis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            pool = aredis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=self.MAX_CONNECTIONS,
                timeout=self.COMMAND_TIMEOUT,  # waiting for a free connection
                socket_connect_timeout=self.CONNECT_TIMEOUT,
                socket_timeout=self.COMMAND_TIMEOUT,
                retry=Retry(NoBackoff(), 0),  # fail fast, fall back; Redis is tried again later
                decode_responses=True,
            )
            self._client, self._loop, self._scripts = aredis.Redis.from_pool(pool), loop, {}
        return self._client

    def script(self, source: str) -> Any:
        """A Lua script registered on the current client (``await script(keys=[…], args=[…])``)."""
        client = self._redis()
        registered = self._scripts.get(source)
        if registered is None:
            registered = self._scripts[source] = client.register_script(source)
        return registered

    async def run(self, operation: Callable[[Any], Awaitable[T]]) -> T:
        """``await operation(redis_client)``, time-boxed; ``SharedStateUnavailable`` on any failure."""
        if not self.available:
            self._held_back += 1
            raise SharedStateUnavailable
        try:
            with anyio.fail_after(self.CALL_TIMEOUT):
                result = await operation(self._redis())
        except SharedStateUnavailable:
            raise
        except Exception as exc:  # redis errors, OSError, TimeoutError, a garbled reply: all mean "not now"
            self._failed(exc)
            raise SharedStateUnavailable from None
        if self._down:
            self._down = False
            log.warning("Redis at %s is reachable again: this replica shares state with the others again", self.where)
        return result

    async def ping(self) -> bool:
        """Is Redis reachable now? (Answers False without asking while it is being left alone.)"""
        try:
            return bool(await self.run(lambda r: r.ping()))
        except SharedStateUnavailable:
            return False

    def discarded(self, what: str, reason: str) -> None:
        """A value read from Redis was not used: one warning a minute per kind of value, never the value."""
        now = self.clock()
        if now - self._discard_warned.get(what, -math.inf) >= self.WARN_EVERY:
            self._discard_warned[what] = now
            log.warning(
                "discarded a shared %s from Redis at %s (%s): this replica asks the API instead",
                what,
                self.where,
                reason,
            )

    def _failed(self, exc: BaseException) -> None:
        now = self.clock()
        self._down = True
        self._down_until = now + self.RETRY_AFTER
        self._held_back += 1
        if now - self._warned_at >= self.WARN_EVERY:
            held = self._held_back - 1
            more = f" ({held} more failed or skipped calls since the last such warning)" if held > 0 else ""
            log.warning(
                "Redis at %s is unavailable (%s): this replica falls back to its own state (its waits poll on "
                "their own, its limits and key checks count for it alone) and tries Redis again in %.0f s%s",
                self.where,
                type(exc).__name__,
                self.RETRY_AFTER,
                more,
            )
            self._warned_at = now
            self._held_back = 0

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose(close_connection_pool=True)
            except Exception:  # closing a client whose server is gone
                log.debug("closing the Redis client failed", exc_info=True)


class SeenOnce:
    """Tags that may each be used once within ``seconds`` (e.g. a sealed request state after its
    round was decided), across replicas when they share Redis: the first ``first_time(tag)`` is
    True, every later one False. Kept in this process too, so a tag used here stays used while
    Redis is unreachable (then only this replica knows it)."""

    MAX_LOCAL: Final = 100_000

    def __init__(
        self, shared: SharedRedis | None, what: str, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.shared = shared
        self.what = what
        self.seconds = seconds
        self.clock = clock
        self._seen: dict[str, float] = {}  # tag -> when it may be forgotten

    async def first_time(self, tag: str) -> bool:
        now = self.clock()
        if self._seen.get(tag, -math.inf) > now:
            return False
        if len(self._seen) >= self.MAX_LOCAL:
            self._seen = {t: until for t, until in self._seen.items() if until > now}
        self._seen[tag] = now + self.seconds
        if self.shared is None:
            return True
        shared = self.shared
        name = shared.key(self.what, tag)
        value = shared.sealer.seal(name, "1")
        try:
            return bool(await shared.run(lambda r: r.set(name, value, nx=True, px=max(1, round(self.seconds * 1000)))))
        except SharedStateUnavailable:
            return True  # this replica's own record stands in
