"""What the tools return. Each tool's output schema and its structured result come from one of
these models, so the two cannot drift. Views are compact on purpose: they cost the model tokens."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from redu_mcp.api import READY, AnyKind, Flavor, Instance, Keypair, Network, SecurityGroup, User

PasswordDelivery = Literal["file", "shown_once", "caller_supplied", "not_returned", "unknown"]


class InstanceView(BaseModel):
    """One instance, PostgreSQL or Redis, in the same shape."""

    kind: Literal["database", "redis"]
    id: int
    name: str
    status: str = Field(description="provisioning, ready or error; other values mean not ready yet")
    ready: bool
    version: str | None = None
    host: str | None = Field(default=None, description="The floating IP; null until ready")
    port: int | None = None
    db_name: str | None = Field(default=None, description="PostgreSQL only")
    db_user: str | None = Field(default=None, description="PostgreSQL only")
    created_at: str | None = None

    @classmethod
    def of(cls, kind: AnyKind, instance: Instance) -> InstanceView:
        return cls(
            kind=kind.name,
            id=instance.id,
            name=instance.name,
            status=instance.status,
            ready=instance.status == READY,
            version=kind.version_of(instance),
            host=instance.floating_ip,
            port=kind.port_of(instance),
            db_name=kind.database_of(instance),
            db_user=kind.user_of(instance),
            created_at=instance.created_at,
        )


class InstanceDetail(InstanceView):
    """One instance with every other (non-secret) field the API returned."""

    other_fields: dict[str, Any] = Field(
        default_factory=dict, description="Fields the API added beyond the documented ones"
    )

    @classmethod
    def of(cls, kind: AnyKind, instance: Instance) -> InstanceDetail:
        view = InstanceView.of(kind, instance)
        return cls(**view.model_dump(), other_fields=dict(instance.model_extra or {}))


class InstanceList(BaseModel):
    kind: Literal["database", "redis"]
    count: int
    truncated: bool = Field(description="True when more instances exist than were returned (raise limit)")
    instances: list[InstanceView]


class Connection(BaseModel):
    """How to connect, without the password."""

    host: str | None = Field(description="Null until the instance is ready")
    port: int
    user: str | None = None
    database: str | None = None
    uri: str | None = Field(description="Connection URI without the password; null until a host is assigned")

    @classmethod
    def of(cls, kind: AnyKind, instance: Instance) -> Connection:
        return cls(
            host=instance.floating_ip,
            port=kind.port_of(instance),
            user=kind.user_of(instance),
            database=kind.database_of(instance),
            uri=kind.connection_uri(instance),
        )


class CreateResult(BaseModel):
    created: bool = Field(description="False when an instance with this name already existed and is reported instead")
    instance: InstanceView
    connection: Connection
    password_delivery: PasswordDelivery = Field(
        description="file: saved to credentials_file; shown_once: in `password` below; caller_supplied: the one "
        "you passed; not_returned/unknown: not available"
    )
    credentials_file: str | None = None
    password: str | None = Field(default=None, description="Only with --secrets reveal, or if saving the file failed")
    message: str
    next_step: str


class DeleteResult(BaseModel):
    deleted: bool
    kind: Literal["database", "redis"]
    id: int
    name: str | None = None
    message: str


class WaitResult(BaseModel):
    ready: bool
    status: str
    instance: InstanceView
    elapsed_seconds: float
    polls: int
    connection: Connection | None = None
    credentials_file: str | None = None
    next_step: str


class FlavorList(BaseModel):
    flavors: list[Flavor]


class NetworkList(BaseModel):
    networks: list[Network]


class KeypairList(BaseModel):
    keypairs: list[Keypair]


class SecurityGroupList(BaseModel):
    security_groups: list[SecurityGroup]


class WhoAmI(BaseModel):
    user: User
    api_url: str
    sandbox: bool
    access: Literal["read", "create", "full"]
