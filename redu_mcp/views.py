"""What the tools return. Each tool's output schema and its structured result come from one of
these models, so the two cannot drift. Views are compact on purpose: they cost the model tokens."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from redu_mcp.kinds import DATABASE, Kind
from redu_mcp.models import READY, Flavor, Instance, Keypair, Network, SecurityGroup, User

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
    def of(cls, kind: Kind, instance: Instance) -> InstanceView:
        return cls(
            kind=kind.name,
            id=instance.id,
            name=instance.name,
            status=instance.status,
            ready=instance.status == READY,
            version=instance.engine_version,
            host=instance.floating_ip,
            port=instance.port or kind.default_port,
            db_name=getattr(instance, "db_name", None),
            db_user=getattr(instance, "db_user", None),
            created_at=instance.created_at,
        )


class InstanceDetail(InstanceView):
    """One instance with every other (non-secret) field the API returned."""

    other_fields: dict[str, Any] = Field(default_factory=dict, description="Fields the API added beyond the documented ones")

    @classmethod
    def of(cls, kind: Kind, instance: Instance) -> InstanceDetail:
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
    def of(cls, kind: Kind, instance: Instance) -> Connection:
        port = instance.port or kind.default_port
        host = instance.floating_ip
        user = getattr(instance, "db_user", None) if kind is DATABASE else None
        database = getattr(instance, "db_name", None) if kind is DATABASE else None
        return cls(host=host, port=port, user=user, database=database, uri=connection_uri(kind, instance))


def connection_uri(kind: Kind, instance: Instance, password: str | None = None) -> str | None:
    """``postgresql://user[:password]@host:port/db`` or ``redis://[:password@]host:port/0``; None without a host."""
    host = instance.floating_ip
    if not host:
        return None
    port = instance.port or kind.default_port
    secret = f":{quote(password, safe='')}" if password else ""
    if kind is DATABASE:
        user = quote(getattr(instance, "db_user", None) or "", safe="")
        return f"{kind.uri_scheme}://{user}{secret}@{host}:{port}/{getattr(instance, 'db_name', None) or ''}"
    return f"{kind.uri_scheme}://{secret + '@' if secret else ''}{host}:{port}/0"


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


# --- schemas as listed ------------------------------------------------------------------------------

_SUBSCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "contains")


def compact_schema(schema: Any, *, output: bool = False) -> Any:
    """``schema`` without what only costs tokens: the ``title`` pydantic derives from every field and
    model name ("Flavor Id" for ``flavor_id``; ~15% of a tools/list). With ``output``, also the
    ``default: null`` of optional result fields, and ``anyOf: [{type: T}, {type: null}]`` written as
    ``type: [T, null]`` (the same JSON Schema). Input schemas keep their ``anyOf`` form, which every
    model provider accepts. Validation is unchanged: only annotations and spelling go."""
    if not isinstance(schema, dict):
        return schema
    compact: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if output and key == "default" and value is None:
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            value = {name: compact_schema(sub, output=output) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            value = [compact_schema(sub, output=output) for sub in value]
        elif key in _SUBSCHEMAS and isinstance(value, dict):
            value = compact_schema(value, output=output)
        compact[key] = value
    branches = compact.get("anyOf")
    if output and "type" not in compact and isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = branches[1] if branches[0] == {"type": "null"} else branches[0]
        if set(other) == {"type"} and isinstance(other["type"], str):
            del compact["anyOf"]
            compact["type"] = [other["type"], "null"]
    return compact
