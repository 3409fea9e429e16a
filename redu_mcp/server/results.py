"""What the tools return. Each tool's output schema and its structured result come from one of
these models, so the two cannot drift. Only declared fields leave the server.

The text a model reads is the same result as compact JSON without empty fields
(``ToolSpec.build`` renders it); ``structuredContent`` keeps every field of the schema.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

from redu_mcp.api import (
    DEFAULT_DB_NAME,
    DEFAULT_DB_USER,
    DEFAULT_POSTGRES_VERSION,
    DEFAULT_REDIS_VERSION,
    DEFAULT_SECURITY_GROUPS,
    READY,
    AnyKind,
    Flavor,
    Instance,
    Keypair,
    Network,
    PostgresVersion,
    RedisVersion,
    SecurityGroup,
    User,
)

KindName = Literal["database", "redis"]
PasswordDelivery = Literal["file", "shown_once", "caller_supplied", "not_returned", "unknown"]


class InstanceView(BaseModel):
    """One instance, PostgreSQL or Redis, in the same shape."""

    kind: KindName
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


class InstanceList(BaseModel):
    kind: KindName
    total: int = Field(description="Instances matching the filters")
    offset: int
    instances: list[InstanceView] = Field(description="Newest first")
    next_step: str | None = Field(default=None, description="How to see the rest, when more match than are shown")


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
    connection: Connection | None = Field(default=None, description="Once the instance has a host")
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
    kind: KindName
    id: int
    name: str | None = None
    message: str


class WaitResult(BaseModel):
    ready: bool
    instance: InstanceView
    waited_seconds: float = Field(description="How long this call waited")
    seconds_since_created: float | None = Field(default=None, description="Age of the instance, when known")
    connection: Connection | None = None
    credentials_file: str | None = None
    next_step: str


# --- what a create accepts ------------------------------------------------------------------------------


class FlavorOption(BaseModel):
    id: str = Field(description="Pass this as flavor_id")
    name: str
    vcpus: int | None = None
    ram_mib: int | None = None
    disk_gb: int | None = None

    @classmethod
    def of(cls, flavor: Flavor) -> FlavorOption:
        return cls(id=flavor.id, name=flavor.name, vcpus=flavor.vcpus, ram_mib=flavor.ram, disk_gb=flavor.disk)


class NetworkOption(BaseModel):
    id: str = Field(description="Pass this as network_id")
    name: str

    @classmethod
    def of(cls, network: Network) -> NetworkOption:
        return cls(id=network.id, name=network.name)


class SecurityGroupOption(BaseModel):
    name: str = Field(description="Pass names in security_group_names")
    description: str | None = None

    @classmethod
    def of(cls, group: SecurityGroup) -> SecurityGroupOption:
        return cls(name=group.name, description=group.description)


class DatabaseDefaults(BaseModel):
    versions: list[PostgresVersion] = Field(default_factory=lambda: list(get_args(PostgresVersion)))
    version: PostgresVersion = DEFAULT_POSTGRES_VERSION
    db_name: str = DEFAULT_DB_NAME
    db_user: str = DEFAULT_DB_USER


class RedisDefaults(BaseModel):
    versions: list[RedisVersion] = Field(default_factory=lambda: list(get_args(RedisVersion)))
    version: RedisVersion = DEFAULT_REDIS_VERSION


class CreateOptions(BaseModel):
    flavors: list[FlavorOption]
    networks: list[NetworkOption]
    keypairs: list[str] = Field(description="Pass one as keypair_name")
    security_groups: list[SecurityGroupOption]
    default_security_groups: list[str] = list(DEFAULT_SECURITY_GROUPS)
    database: DatabaseDefaults = DatabaseDefaults()
    redis: RedisDefaults = RedisDefaults()

    @classmethod
    def of(
        cls, flavors: list[Flavor], networks: list[Network], keypairs: list[Keypair], groups: list[SecurityGroup]
    ) -> CreateOptions:
        return cls(
            flavors=[FlavorOption.of(f) for f in flavors],
            networks=[NetworkOption.of(n) for n in networks],
            keypairs=[k.name for k in keypairs],
            security_groups=[SecurityGroupOption.of(g) for g in groups],
        )


class WhoAmI(BaseModel):
    user: User
    api_url: str
    sandbox: bool
    access: Literal["read", "create", "full"]
