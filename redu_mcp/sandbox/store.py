"""The sandbox's state: users, seeded lookups, instances, and how instances become ready.

Instances move ``provisioning → ready`` after ``provisioning_seconds`` on the sandbox clock (or to
``error``, for any instance whose name starts with ``fail-``, or that was named in
``Store.fail_names``). A ``Provisioner`` decides the status; the default one only looks at the
clock, the engines one (``redu_mcp.sandbox.engine_provisioner``) runs real servers.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from redu_mcp.api import KINDS, AnyKind, KindName

FAIL_PREFIX = "fail-"

SEED_FLAVORS: list[dict[str, Any]] = [
    {"id": "1", "name": "db.small", "vcpus": 1, "ram": 2048, "disk": 20},
    {"id": "2", "name": "db.medium", "vcpus": 2, "ram": 4096, "disk": 40},
    {"id": "m1.large", "name": "m1.large", "vcpus": 4, "ram": 8192, "disk": 80},
]
SEED_NETWORKS: list[dict[str, Any]] = [
    {"id": "net-public", "name": "public", "external": True},
    {"id": "net-private", "name": "private", "external": False},
]
SEED_KEYPAIRS: list[dict[str, Any]] = [
    {
        "name": "default-key",
        "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEKEYFORTHESANDBOXONLY sandbox",
        "fingerprint": "SHA256:sandboxsandboxsandboxsandboxsandboxsandbox0",
    }
]
SEED_SECURITY_GROUPS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "default",
        "description": "Allow all egress; ingress from the same group",
        "rules": [{"direction": "egress", "protocol": None, "port_range_min": None, "port_range_max": None}],
    },
    {
        "id": 2,
        "name": "db-clients",
        "description": "PostgreSQL and Redis from anywhere",
        "rules": [
            {"direction": "ingress", "protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432},
            {"direction": "ingress", "protocol": "tcp", "port_range_min": 6379, "port_range_max": 6379},
        ],
    },
]


@dataclass
class Account:
    """The user behind an API key. ``read_only`` keys get 403 on writes."""

    id: str
    username: str
    email: str
    read_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # more fields GET /v1/me answers (a hostile API's)

    def as_json(self) -> dict[str, Any]:
        roles = ["viewer"] if self.read_only else ["user"]
        return {"id": self.id, "username": self.username, "email": self.email, "roles": roles, **self.extra}


@dataclass
class Record:
    """One instance. ``public`` is what GET returns; the password is never stored."""

    kind: AnyKind
    owner: str  # Account.id
    public: dict[str, Any]
    started_at: float
    fail: bool = False
    runtime: Any = None  # whatever the provisioner keeps (e.g. a running engine)

    @property
    def key(self) -> tuple[str, int]:
        """Ids are numbered per kind, like the API's (database 1 and Redis 1 are two instances)."""
        return (self.kind.name, self.public["id"])


class Provisioner(Protocol):
    async def start(self, record: Record, password: str) -> None: ...
    async def refresh(self, record: Record) -> None: ...
    async def stop(self, record: Record) -> None: ...
    async def aclose(self) -> None: ...


class ClockProvisioner:
    """Instances become ready (or fail) when ``seconds`` have passed on ``clock``."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self.clock = clock
        self._ips = itertools.count(10)

    async def start(self, record: Record, password: str) -> None:
        return None

    async def refresh(self, record: Record) -> None:
        if record.public["status"] != "provisioning" or self.clock() - record.started_at < self.seconds:
            return
        if record.fail:
            record.public["status"] = "error"
        else:
            record.public["status"] = "ready"
            record.public["floating_ip"] = f"203.0.113.{next(self._ips) % 250 + 1}"  # TEST-NET-3

    async def stop(self, record: Record) -> None:
        return None

    async def aclose(self) -> None:
        return None


class Store:
    def __init__(
        self,
        accounts: dict[str, Account],
        provisioner: Provisioner,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = accounts
        self.provisioner = provisioner
        self.clock = clock
        self.flavors = [dict(f) for f in SEED_FLAVORS]
        self.networks = [dict(n) for n in SEED_NETWORKS]
        self.keypairs = [dict(k) for k in SEED_KEYPAIRS]
        self.security_groups = [dict(g) for g in SEED_SECURITY_GROUPS]
        self.records: dict[tuple[str, int], Record] = {}  # by Record.key
        self.fail_names: set[str] = set()
        self._ids = {kind: itertools.count(1) for kind in KINDS}

    def owned(self, kind: AnyKind, owner: str) -> list[Record]:
        return [r for r in self.records.values() if r.kind == kind and r.owner == owner]

    def find(self, kind: AnyKind, owner: str, id: int) -> Record | None:
        record = self.records.get((kind.name, id))
        return record if record and record.owner == owner else None

    # For tests that reach behind the API: an instance by kind (its name, e.g. "redis") and id, whoever owns it.
    def record(self, kind: KindName, id: int) -> Record:
        return self.records[(kind, id)]

    def exists(self, kind: KindName, id: int) -> bool:
        return (kind, id) in self.records

    async def create(self, kind: AnyKind, owner: str, public: dict[str, Any], password: str) -> Record:
        id = next(self._ids[kind.name])
        public = {"id": id, **public, "status": "provisioning", "floating_ip": None}
        public["created_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = public["name"]
        record = Record(
            kind=kind,
            owner=owner,
            public=public,
            started_at=self.clock(),
            fail=name.startswith(FAIL_PREFIX) or name in self.fail_names,
        )
        self.records[record.key] = record
        await self.provisioner.start(record, password)
        return record

    async def view(self, record: Record) -> dict[str, Any]:
        await self.provisioner.refresh(record)
        return dict(record.public)

    async def delete(self, record: Record) -> None:
        self.records.pop(record.key, None)
        await self.provisioner.stop(record)


def generate_password() -> str:
    return secrets.token_urlsafe(18)
