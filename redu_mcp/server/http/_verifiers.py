"""The two ways a bearer token is checked: the operator's token, and a caller's own Redu API key.

Under ``--auth token`` the token is compared with the operator's in constant time. Under ``--auth
passthrough`` it is a Redu API key, checked with ``GET /v1/me``: that costs an upstream call, so
answers are remembered (here, and in Redis when replicas share state), concurrent checks of one key
are merged, and checks are rate-limited per client address (``redu_mcp.server.http._limits``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import anyio
from mcp.server.auth.provider import AccessToken

from redu_mcp.api import AuthenticationError, MalformedKeyError, PermissionDeniedError, ReduError, RetryPolicy
from redu_mcp.server.http._limits import Limits
from redu_mcp.server.http._shared_limits import SharedKeyVerdicts
from redu_mcp.server.http._verdicts import Accepted, BearerVerifier, Rejected, Throttled, Unavailable, Verdict
from redu_mcp.server.runtime import Runtime

log = logging.getLogger("redu_mcp.server.http")  # one logger for the package, like httpx2's

VERIFIED_KEY_TTL = 60.0  # seconds a key verified with GET /v1/me is trusted without asking again
MAX_REMEMBERED_KEYS = 10_000  # verified (and refused) keys remembered at once, each
UNAVAILABLE_RETRY_AFTER = 5  # seconds a client is told to wait when the API could not check its key


class StaticTokenVerifier(BearerVerifier):
    """Accepts exactly the operator's token (compared in constant time)."""

    def __init__(self, token: str, resource: str) -> None:
        self._token = token.encode()
        self._resource = resource

    async def check(self, token: str, client: str) -> Verdict:
        if hmac.compare_digest(token.encode(), self._token):
            return Accepted(
                AccessToken(token=token, client_id="operator", scopes=[], resource=self._resource), "operator"
            )
        return Rejected()


class ReduKeyVerifier(BearerVerifier):
    """Accepts a bearer token that is a working Redu API key, checked with ``GET /v1/me``.

    Answers are remembered by the key's SHA-256: a good key for ``ttl`` seconds, a refused one for
    ``rejected_ttl``; concurrent requests with the same unknown key share one check. A check that
    has to ask the API first takes one of the client address's key checks (``Limits``); an API
    that cannot answer is ``Unavailable`` (never cached, never a 401)."""

    def __init__(
        self,
        runtime: Runtime,
        limits: Limits,
        resource: str,
        ttl: float = VERIFIED_KEY_TTL,
        rejected_ttl: float = 30.0,
        shared: SharedKeyVerdicts | None = None,
    ) -> None:
        self._runtime = runtime
        self._limits = limits
        self._resource = resource
        self._ttl = ttl
        self._rejected_ttl = rejected_ttl
        self._shared = shared  # other replicas' answers (Redis), consulted before asking the API
        self._verified: dict[str, tuple[float, str]] = {}  # sha256(key) -> (expiry, user id)
        self._rejected: dict[str, float] = {}  # sha256(key) -> expiry
        self._checking: dict[str, anyio.Event] = {}  # sha256(key) -> set when its check is over

    def _accepted(self, token: str, user_id: str) -> Accepted:
        return Accepted(AccessToken(token=token, client_id=user_id, scopes=[], resource=self._resource), user_id)

    def _remembered(self, digest: str, token: str, now: float) -> Verdict | None:
        verified = self._verified.get(digest)
        if verified is not None and verified[0] >= now:
            return self._accepted(token, verified[1])
        rejected = self._rejected.get(digest)
        if rejected is not None and rejected >= now:
            return Rejected()
        return None

    async def check(self, token: str, client: str) -> Verdict:
        digest = hashlib.sha256(token.encode()).hexdigest()
        allowed = consulted = False
        while True:
            remembered = self._remembered(digest, token, self._runtime.clock())
            if remembered is not None:
                return remembered
            running = self._checking.get(digest)
            if running is not None:
                await running.wait()  # someone is asking about this key: use their answer (or ask again)
                continue
            if self._shared is not None and not consulted:
                consulted = True
                recalled = await self._recall(digest, token)
                if recalled is not None:
                    return recalled
                continue  # look again: another check of this key may have started meanwhile
            if allowed:
                break
            refusal = await self._limits.allow_key_check(client)
            if refusal is not None:
                log.debug("key check refused for a client: %d per minute", refusal.limit)
                return Throttled(refusal)
            allowed = True  # look again: another check of this key may have started meanwhile
        done = self._checking[digest] = anyio.Event()
        try:
            return await self._ask(digest, token)
        finally:
            if self._checking.get(digest) is done:
                del self._checking[digest]
            done.set()

    async def _recall(self, digest: str, token: str) -> Verdict | None:
        """What another replica learnt about this key, kept here for the rest of its time."""
        assert self._shared is not None
        recalled = await self._shared.recall(digest)
        if recalled is None:
            return None
        user_id, seconds_left = recalled
        until = self._runtime.clock() + seconds_left
        if user_id is None:
            self._remember(self._rejected, digest, until)
            return Rejected()
        self._remember(self._verified, digest, (until, user_id))
        return self._accepted(token, user_id)

    async def _ask(self, digest: str, token: str) -> Verdict:
        client = self._runtime.base_client().with_api_key(token).with_retry(RetryPolicy.none())
        try:
            user = await client.me()
        except MalformedKeyError:  # a placeholder: refused before anything was sent
            log.info("refused a request: its bearer token is an example's placeholder, not a Redu API key")
            return Rejected()
        except (AuthenticationError, PermissionDeniedError):
            self._remember(self._rejected, digest, self._runtime.clock() + self._rejected_ttl)
            if self._shared is not None:
                await self._shared.remember(digest, None, self._rejected_ttl)
            log.info("refused a request: its Redu API key was rejected by GET /v1/me")
            return Rejected()
        except ReduError as exc:
            log.warning("could not verify a Redu API key (%s); answering 503", type(exc).__name__)
            advised = exc.retry_after
            return Unavailable(max(1, min(60, round(advised))) if advised is not None else UNAVAILABLE_RETRY_AFTER)
        except Exception as exc:  # never a 500 with a traceback (and never the key in a log line)
            log.error("could not verify a Redu API key: unexpected %s; answering 503", type(exc).__name__)
            return Unavailable(UNAVAILABLE_RETRY_AFTER)
        user_id = str(user.id)
        self._remember(self._verified, digest, (self._runtime.clock() + self._ttl, user_id))
        self._rejected.pop(digest, None)
        if self._shared is not None:
            await self._shared.remember(digest, user_id, self._ttl)
        return self._accepted(token, user_id)

    def _remember(self, cache: dict[str, Any], digest: str, entry: Any) -> None:
        if len(cache) >= MAX_REMEMBERED_KEYS:  # expired entries go first; the cache stays bounded
            now = self._runtime.clock()
            live = {k: v for k, v in cache.items() if (v[0] if isinstance(v, tuple) else v) >= now}
            cache.clear()
            if len(live) < MAX_REMEMBERED_KEYS:
                cache.update(live)
        cache[digest] = entry
