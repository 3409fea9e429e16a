"""Sandbox instances backed by real servers: each create starts PostgreSQL or Redis on loopback.

An instance is ``provisioning`` while its engine starts, ``ready`` only once an authenticated
connection succeeds (then ``floating_ip`` is 127.0.0.1 and ``port`` the engine's real port), and
``error`` if the engine failed, with the reason in the sandbox log. PostgreSQL runs the requested
major version when it is installed (Debian's ``/usr/lib/postgresql/<major>``); Redis runs whichever
``redis-server`` there is. Either way the reported version is the one really running (its major,
from the create's answer on; the full one in ``sandbox_engine_version``), so nobody is misled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redu_mcp.api import DATABASE, REDIS
from redu_mcp.sandbox.engines import Engine, Engines, EngineStartError, EngineUnavailable, RunningEngine
from redu_mcp.sandbox.store import Record

log = logging.getLogger("redu_mcp.sandbox")


class EngineProvisioner:
    def __init__(self, engines: Engines | None = None) -> None:
        self._engines = engines
        self._starting: dict[tuple[str, int], asyncio.Task[RunningEngine]] = {}

    @property
    def engines(self) -> Engines:
        if self._engines is None:
            self._engines = Engines()
        return self._engines

    async def start(self, record: Record, password: str) -> None:
        """Start the engine in the background: the create answers at once, like the real API."""
        public = record.public
        if record.fail:
            return  # a `fail-` name: no engine, it ends in error on the clock-free path below
        requested = public.get(record.kind.version_field)
        await self._report_the_real_version(record, requested)
        starting = {
            DATABASE.name: lambda: self.engines.start_postgres(
                db_name=public["db_name"], db_user=public["db_user"], password=password, version=requested
            ),
            REDIS.name: lambda: self.engines.start_redis(password=password),
        }[record.kind.name]()
        self._starting[record.key] = asyncio.create_task(starting)

    async def _report_the_real_version(self, record: Record, requested: str | None) -> None:
        """The version field says what will really run (its major), not what was asked for."""
        engine: Engine = "postgres" if record.kind is DATABASE else "redis"
        try:
            actual = await self.engines.version_for(engine, requested)
        except (EngineUnavailable, EngineStartError):
            return  # the start fails the same way, and the instance ends in error with the reason
        record.public[record.kind.version_field] = actual.split(".")[0]
        record.public["sandbox_engine_version"] = actual

    async def refresh(self, record: Record) -> None:
        public = record.public
        if public["status"] != "provisioning":
            return
        if record.fail:
            self._fail(record, "sandbox: names starting with 'fail-' always fail")
            return
        if record.runtime is None:
            task = self._starting.get(record.key)
            if task is None or not task.done():
                return
            del self._starting[record.key]
            try:
                record.runtime = task.result()
            except (EngineStartError, ValueError) as exc:
                self._fail(record, str(exc))
                return
        engine: RunningEngine = record.runtime
        reason = engine.failure()
        if reason:
            self._fail(record, reason)
        elif await engine.is_ready():
            public.update(status="ready", floating_ip=engine.host, port=engine.port)

    def _fail(self, record: Record, reason: str) -> None:
        log.warning("sandbox %s %s failed to start: %s", record.kind.name, record.public["id"], reason)
        record.public["status"] = "error"

    async def stop(self, record: Record) -> None:
        task = self._starting.pop(record.key, None)
        if task is not None:
            task.cancel()
            try:
                engine: Any = await task
            except BaseException:
                engine = None
            if engine is not None:
                await engine.stop()
        if isinstance(record.runtime, RunningEngine):
            await record.runtime.stop()

    async def aclose(self) -> None:
        for task in self._starting.values():
            task.cancel()
        self._starting.clear()
        if self._engines is not None:
            await self._engines.aclose()
