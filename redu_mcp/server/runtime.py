"""What a running server holds: its settings, the API client, saved credentials and the shared
status board. One ``Runtime`` per server: it is the server's lifespan context, so a tool reaches it
through its ``Context`` (``runtime_of``).

The client is opened when the first MCP session starts and closed when the last one ends, so an
in-process test client, a stdio process and an HTTP server all manage it the same way. A client
handed in (the sandbox's, built by the command line; a test's) belongs to whoever made it: it is
never closed here, and ``on_close`` runs instead when the last session ends.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver.exceptions import ToolError

from redu_mcp.api import REDIS, NotConfiguredError, ReduClient, ReduError, remember_secret
from redu_mcp.data import Pools, RedisData
from redu_mcp.provisioning.audit import AuditLog
from redu_mcp.provisioning.credentials import CredentialStore, sandbox_run_root
from redu_mcp.provisioning.deletions import DeletionRecord
from redu_mcp.provisioning.waiting import Board, StatusBoard
from redu_mcp.server.approvals import Approvals
from redu_mcp.server.errors import ConfigError
from redu_mcp.server.settings import Settings
from redu_mcp.server.wording import Wording
from redu_mcp.sharing import Sealer, redis_password

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from redu_mcp.sharing import SharedRedis

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        words: Wording,
        client: ReduClient | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if settings.sandbox and client is None:
            raise ConfigError("--sandbox needs the emulator's client: build the server with client=Sandbox().client()")
        self.settings = settings
        #: This server's sentences: next steps name only the tools its access level offers.
        self.words = words
        self._given_client = client
        self._on_close = on_close
        self._client: ReduClient | None = None
        self._sessions = 0
        root = settings.credentials_root
        if settings.sandbox and settings.credentials_dir is None:
            root = sandbox_run_root(root)  # make-believe instances: a folder of this run's own
        self.credentials = CredentialStore(root)
        for secret in (settings.auth_token, *settings.state_keys, redis_password(settings.redis_url)):
            remember_secret(secret)  # the log scrubber knows every secret the process holds
        #: Seals what replicas share and names it with keyed hashes: the state key, else this process's own.
        self.sealer = Sealer(settings.state_keys) if settings.state_keys else Sealer.ephemeral()
        #: Connections to PostgreSQL instances, per principal and instance (opened on first use).
        self.pools = Pools(settings.postgres_options)
        #: What this server deleted lately, so a later look-up of the id says so (in memory, per caller).
        self.deletions = DeletionRecord()
        #: Connections to Redis instances and each instance's command table (opened on first use).
        self.redis = RedisData()
        try:
            self.audit = AuditLog(settings.audit_log)
        except OSError as exc:
            raise ConfigError(
                f"refusing the audit log {exc.filename or settings.audit_log}: {exc.strerror or exc}; fix the path "
                "(--audit-log / REDU_MCP_AUDIT_LOG): a file of yours, not a symlink, that only you can write"
            ) from None
        #: This process among the replicas (in logs, leases and the shared session table): random, no secret.
        self.replica = secrets.token_hex(4)
        #: Redis, when replicas share state (``REDU_MCP_REDIS_URL``); None: everything stays in this process.
        self.shared: SharedRedis | None = None
        self.board: Board = StatusBoard()
        if settings.redis_url:
            from redu_mcp.provisioning.shared_board import RedisBoard
            from redu_mcp.sharing import SharedRedis

            self.shared = SharedRedis(settings.redis_url, namespace=self._namespace(), sealer=self.sealer)
            self.board = RedisBoard(self.shared)
        #: ``--confirm human``'s confirmation pages waiting for a person (in Redis when replicas share it).
        self.approvals = Approvals(self.shared, self.sealer)
        #: The clock of the server's caches (verified keys); tests move it forward.
        self.clock: Callable[[], float] = time.monotonic

    def _namespace(self) -> str:
        """What replicas of one deployment share in Redis: the same API (the client handed in, such as
        one emulator's, has its own address), and the same server key. A keyed hash, never the key
        itself nor a plain hash of it."""
        settings = self.settings
        url = self._given_client.base_url if self._given_client is not None else settings.api_url
        upstream = f"{url}\0{'' if settings.auth_passthrough else settings.api_key or ''}"
        return self.sealer.tag(upstream, 16)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Runtime]:
        """Held for the life of each MCP session (the server's lifespan)."""
        self._sessions += 1
        try:
            yield self
        finally:
            self._sessions -= 1
            if self._sessions == 0:
                await self._close()

    async def close_connections(self, kind: str, instance_id: int) -> None:
        """The instance was deleted: close every principal's connections to it."""
        await self.pools.close_instance(kind, instance_id)
        if kind == REDIS.name:  # Redis connections are kept per Redis id (ids are numbered per kind)
            await self.redis.close_instance(None, instance_id)

    def client_or_tool_error(self, doing: str) -> ReduClient:
        """``client()``, or a tool error saying why there is none (no API key for this request)."""
        try:
            return self.client()
        except ReduError as exc:
            raise ToolError(self.words.failure(doing, exc)) from None

    def client(self) -> ReduClient:
        """The client for the current request: the caller's own key under pass-through auth."""
        base = self.base_client()
        if self.settings.auth_passthrough:
            key = current_bearer_token()
            if key is None:
                raise NotConfiguredError(
                    "this server uses each client's own Redu API key, and none came with this request"
                )
            return base.with_api_key(key)
        if not self.settings.configured:
            raise NotConfiguredError("no Redu API key is configured")
        return base

    def principal(self) -> str:
        """Who is acting, for the audit trail: the pass-through user's id, ``operator`` (the operator's
        token), or ``local`` (stdio, or HTTP on loopback without authentication)."""
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        if token is None:
            return "local"
        return f"user:{token.client_id}" if self.settings.auth_passthrough else "operator"

    def caller_identity(self) -> str:
        """Who is asking, as a keyed, non-reversible tag, so shared state never crosses users."""
        if not self.settings.auth_passthrough:
            return "server"
        return self.sealer.tag(current_bearer_token() or "", 16)

    def base_client(self) -> ReduClient:
        """The shared client (with the server's own key, if any), opened on first use."""
        if self._client is not None:
            return self._client
        if self._given_client is not None:
            self._client = self._given_client
        else:
            self._client = ReduClient(self.settings.api_key, base_url=self.settings.api_url)
        return self._client

    async def _close(self) -> None:
        self.audit.close()
        await self.approvals.aclose()
        await self.pools.aclose()
        await self.redis.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        client, self._client = self._client, None
        if client is not None and client is not self._given_client:
            await client.aclose()
        if self._on_close is not None:
            await self._on_close()


def runtime_of(ctx: Context[Any, Any]) -> Runtime:
    """The runtime of the server handling this request (its lifespan context, see ``build_server``)."""
    runtime = ctx.request_context.lifespan_context
    if not isinstance(runtime, Runtime):
        raise TypeError("this tool runs only in a server made by redu_mcp.server.build_server")
    return runtime


def current_bearer_token() -> str | None:
    """The bearer token of the current HTTP request, if it was authenticated (None on stdio)."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    return token.token if token is not None else None
