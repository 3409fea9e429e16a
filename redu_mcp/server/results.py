"""What several tools' results share: an instance, and how to connect to it.

Each tool's own result model lives in its module (``tools/``); its output schema and its
structured result come from that one model, so the two cannot drift. Only declared fields leave
the server. The text a model reads is the same result as compact JSON without empty fields
(``ToolSpec.build`` renders it); ``structuredContent`` keeps every field of the schema.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from redu_mcp.api import READY, AnyKind, Instance
from redu_mcp.server.kinds import ALL_KINDS, KindChoice, either, engines_with


class InstanceView(BaseModel):
    """One instance of any kind, in the same shape (its schema names the engines)."""

    model_config = ConfigDict(
        json_schema_extra={"description": f"One instance, {either(k.engine for k in ALL_KINDS)}, in the same shape."}
    )

    kind: KindChoice
    id: int
    name: str
    status: str = Field(description="provisioning, ready or error; other values mean not ready yet")
    ready: bool
    version: str | None = None
    host: str | None = Field(default=None, description="The floating IP; null until ready")
    port: int | None = None
    db_name: str | None = Field(default=None, description=f"{engines_with('database_field')} only")
    db_user: str | None = Field(default=None, description=f"{engines_with('user_field')} only")
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


class InstanceDetails(InstanceView):
    """An instance and how to connect to it, without the password (``get_<kind>``, ``list_<kind>s``
    and the instance resources)."""

    uri: str | None = Field(default=None, description="Connection URI without the password; null until ready")
    credentials_file: str | None = Field(default=None, description="The private file with the password, if saved")

    @classmethod
    def with_file(cls, kind: AnyKind, instance: Instance, credentials_file: Path | None) -> InstanceDetails:
        saved = str(credentials_file) if credentials_file else None
        return cls(
            **InstanceView.of(kind, instance).model_dump(), uri=kind.connection_uri(instance), credentials_file=saved
        )


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

    @classmethod
    def once_reachable(cls, kind: AnyKind, instance: Instance) -> Connection | None:
        """How to connect, once there is a host to connect to."""
        return cls.of(kind, instance) if instance.floating_ip else None
