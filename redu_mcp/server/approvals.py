"""Pending approvals of ``--confirm human``'s confirmation pages, and where their pages are served.

An approval is opened when a destructive call needs a person: a record of what would be destroyed
and for whom (``Subject``), under a random token. The token is the page's address (256 bits: a
capability, never logged and never in a result), and it names nothing else. A record then takes two
one-time marks, each set once and never unset:

* *approved*: the page's POST carried the CSRF token derived from the page's token and the
  instance's name, typed by the person (the first such POST wins);
* *used*: the call that opened it goes ahead (the first use wins, only after approved, and only by
  the principal that opened it). Closing an approval (the client declined) sets this mark too.

It expires ``lifetime`` seconds (5 minutes) after it was opened, whatever its marks.

Replicas: with Redis (``REDU_MCP_REDIS_URL``) the record and its marks live there, so the page can be
served by one replica and the call go ahead on another. The record is encrypted with a key derived
from its token and the state key (Redis holds no statement anyone could read without the page's
address), and every value is sealed for its key (``Sealer``) like all shared state, so a mark cannot
be forged or copied from another page. Unlike the rest of the shared state, approvals fail closed:
when Redis cannot be reached no page is opened and no mark is set or trusted
(``ApprovalsUnavailable``): a one-time mark that only one replica knows is not one-time.

Without an HTTP server of its own (stdio, in-process) the pages are served by a loopback listener
started on demand (``redu_mcp.server.http._page_listener``), which stops once its last page expired.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from redu_mcp.sharing import SharedStateUnavailable, Unsealed, bounded_json

if TYPE_CHECKING:
    from redu_mcp.server.http._page_listener import LoopbackPages
    from redu_mcp.sharing import Sealer, SharedRedis

#: Seconds a page may be used after it was opened.
LIFETIME: Final = 300.0
#: Pages open at once in one process (without Redis); more are refused until some expire.
MAX_LOCAL: Final = 10_000
#: What a token looks like (``secrets.token_urlsafe(32)``): a path that is anything else is no page.
TOKEN_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
TOKEN_LENGTH: Final = 43
#: A record in Redis at most: a migration of 1,000,000 characters, JSON-escaped (at most 6 for one) and
#: encrypted in base64 (4 for 3), with room for the rest.
_MAX_RECORD_CHARS: Final = 8_100_000

Action = Literal["delete", "change"]
State = Literal["pending", "approved", "used"]


class ApprovalsUnavailable(Exception):
    """Redis is configured but cannot be used now: nothing is opened, approved or used."""


@dataclass(frozen=True)
class Subject:
    """What a person is asked to approve, and for whom."""

    action: Action  # delete the instance, or change its data
    kind: str  # how the page names the kind ("PostgreSQL database")
    instance_id: int
    name: str  # what the person types
    question: str  # the sentence the client's form would have asked
    statement: str | None  # what runs, for a change of data


@dataclass(frozen=True)
class Approval:
    token: str
    subject: Subject
    principal: str  # a keyed tag of who asked: only their call may use it
    expires_at: float  # wall-clock seconds (replicas compare it)


@dataclass
class _Local:
    approval: Approval
    approved: bool = False
    used: bool = False


def well_formed(token: str) -> bool:
    return len(token) == TOKEN_LENGTH and set(token) <= TOKEN_CHARS


class Approvals:
    """The pending approvals of one server (in this process, or in Redis for every replica)."""

    def __init__(self, shared: SharedRedis | None, sealer: Sealer, *, lifetime: float = LIFETIME) -> None:
        self.shared = shared
        self.sealer = sealer
        self.lifetime = lifetime
        #: Wall clock of expiry checks; tests move it forward.
        self.clock: Callable[[], float] = time.time
        #: Where the pages are served (``…/confirm/``): set by the HTTP app; None: a loopback listener.
        self.served_at: str | None = None
        self._local: dict[str, _Local] = {}
        self._listener: LoopbackPages | None = None

    # --- what a call does ---------------------------------------------------------------------------

    async def open(self, subject: Subject, principal: str) -> Approval:
        """A new pending approval of ``subject``, which only ``principal`` may use."""
        approval = Approval(secrets.token_urlsafe(32), subject, principal, self.clock() + self.lifetime)
        if self.shared is None:
            self._purge()
            if len(self._local) >= MAX_LOCAL:
                raise ApprovalsUnavailable("too many confirmation pages are open")
            self._local[self._tag(approval.token)] = _Local(approval)
            return approval
        name = self._name("page", approval.token)
        record = json.dumps({"subject": asdict(subject), "principal": principal, "expires_at": approval.expires_at})
        value = self.sealer.seal(name, self._encrypt(name, approval.token, record))
        await self._redis(lambda r: r.set(name, value, px=self._ttl_ms(approval)))
        return approval

    async def use(self, token: str, principal: str) -> Approval | None:
        """The approval, marked used, if a person approved it, nobody used it yet, it has not expired
        and ``principal`` opened it; else None (and nothing changes)."""
        found = await self.find(token)
        if found is None or found[1] == "pending" or found[0].principal != principal:
            return None
        return found[0] if await self._mark("used", found[0]) else None  # set once: the first use wins

    async def close(self, token: str) -> None:
        """Nobody may approve or use it any more (the client declined: the page says it was closed)."""
        found = await self.find(token)
        if found is not None:
            await self._mark("used", found[0])

    # --- what the page does -------------------------------------------------------------------------

    async def find(self, token: str) -> tuple[Approval, State] | None:
        """The approval and its state; None when there is none or it expired (the same answer)."""
        if not well_formed(token):
            return None
        if self.shared is None:
            local = self._local.get(self._tag(token))
            if local is None or local.approval.token != token or self._expired(local.approval):
                return None
            return local.approval, "used" if local.used else "approved" if local.approved else "pending"
        names = [self._name(what, token) for what in ("page", "approved", "used")]
        values = await self._redis(lambda r: r.mget(names))
        approval = self._record(names[0], token, values[0])
        if approval is None or self._expired(approval):
            return None
        if self._marked(names[2], values[2]):
            return approval, "used"
        return approval, "approved" if self._marked(names[1], values[1]) else "pending"

    async def approve(self, token: str) -> bool:
        """Mark a pending approval approved: True for the first POST that does, False for any later one."""
        found = await self.find(token)
        if found is None or found[1] != "pending":
            return False
        return await self._mark("approved", found[0])

    def csrf_token(self, token: str) -> str:
        """The CSRF token of a page's form: derived from its token with the state key (never stored)."""
        return self.sealer.tag("confirmation-page/csrf\0" + token, 64)

    # --- where the pages are ------------------------------------------------------------------------

    async def page_url(self, approval: Approval) -> str:
        """The page's address: under the HTTP app's MCP path, else on the loopback listener (started now
        if it is not running, and kept running until this page has expired)."""
        base = self.served_at
        if base is None:
            if self._listener is None:
                from redu_mcp.server.http._page_listener import LoopbackPages

                self._listener = LoopbackPages(self)
            base = await self._listener.base_url(until=approval.expires_at)
        return base + approval.token

    async def aclose(self) -> None:
        """Stop the loopback listener, if one runs (the server is closing)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.aclose()

    # --- storage ------------------------------------------------------------------------------------

    def _tag(self, token: str) -> str:
        return self.sealer.tag("confirmation-page\0" + token)

    def _name(self, what: str, token: str) -> str:
        assert self.shared is not None
        return self.shared.key(f"page-{what}", self._tag(token))

    def _expired(self, approval: Approval) -> bool:
        return not self.clock() < approval.expires_at

    def _ttl_ms(self, approval: Approval) -> int:
        return max(1, math.ceil((approval.expires_at - self.clock()) * 1000))

    def _purge(self) -> None:
        self._local = {tag: entry for tag, entry in self._local.items() if not self._expired(entry.approval)}

    async def _mark(self, what: Literal["approved", "used"], approval: Approval) -> bool:
        """Set a one-time mark: True if this call set it, False if it was set already."""
        if self.shared is None:
            local = self._local.get(self._tag(approval.token))
            if local is None or getattr(local, what):
                return False
            setattr(local, what, True)
            return True
        name = self._name(what, approval.token)
        value = self.sealer.seal(name, "1")
        return bool(await self._redis(lambda r: r.set(name, value, nx=True, px=self._ttl_ms(approval))))

    async def _redis(self, operation: Callable[[Any], Any]) -> Any:
        assert self.shared is not None
        try:
            return await self.shared.run(operation)
        except SharedStateUnavailable:
            raise ApprovalsUnavailable("Redis is unavailable") from None

    def _marked(self, name: str, value: object) -> bool:
        if value is None:
            return False
        try:
            return self.sealer.unseal(name, value, 200) == "1"
        except Unsealed as exc:
            self._discarded(exc)
            return False

    def _record(self, name: str, token: str, value: object) -> Approval | None:
        if value is None:
            return None
        try:
            record = bounded_json(self._decrypt(name, token, self.sealer.unseal(name, value, _MAX_RECORD_CHARS)), 3)
            approval = Approval(token, Subject(**record["subject"]), record["principal"], float(record["expires_at"]))
        except (Unsealed, ValueError, TypeError, KeyError) as exc:
            self._discarded(exc)
            return None
        return approval

    def _discarded(self, exc: Exception) -> None:
        assert self.shared is not None
        self.shared.discarded("confirmation page", str(exc) or type(exc).__name__)

    # --- encryption of a record in Redis ------------------------------------------------------------

    def _cipher(self, token: str) -> Any:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(bytes.fromhex(self.sealer.tag("confirmation-page/key\0" + token, 64)))

    def _encrypt(self, name: str, token: str, payload: str) -> str:
        nonce = os.urandom(12)
        sealed = self._cipher(token).encrypt(nonce, payload.encode(), name.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def _decrypt(self, name: str, token: str, text: str) -> str:
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(text.encode())
            return str(self._cipher(token).decrypt(raw[:12], raw[12:], name.encode()).decode())
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise ValueError("not encrypted for this page") from None
