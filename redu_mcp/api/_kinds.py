"""Everything that differs between PostgreSQL and Redis instances, as data.

One ``Kind`` per instance type holds its API path, models, field names, port and connection
conventions, so that every piece of code above it (client, provisioning, tools, sandbox) is written
once for both. Nothing outside this module asks which kind it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar
from urllib.parse import quote

from pydantic import SecretStr

from redu_mcp.api._models import (
    CreateBody,
    CreatedDatabase,
    CreatedRedis,
    Database,
    DatabaseCreate,
    Instance,
    Redis,
    RedisCreate,
)

KindName = Literal["database", "redis"]

InstanceT_co = TypeVar("InstanceT_co", bound=Instance, covariant=True)
CreatedT_co = TypeVar("CreatedT_co", bound=Instance, covariant=True)
BodyT_co = TypeVar("BodyT_co", bound=CreateBody, covariant=True)


@dataclass(frozen=True)
class EnvNames:
    """The variable names of a credentials env file; None where the kind has no such value."""

    host: str
    port: str
    user: str | None
    password: str
    database: str | None
    uri: str


@dataclass(frozen=True)
class Kind(Generic[InstanceT_co, CreatedT_co, BodyT_co]):
    name: KindName
    collection: str  # the API path segment: /v1/<collection>
    label: str  # how to name one to a human
    engine: str  # the engine's name as people write it ("PostgreSQL")
    engine_short: str  # the engine's name in identifiers ("postgres": the provision_postgres prompt)
    usual_purpose: str  # what one is usually for, in words ("an application")
    model: type[InstanceT_co]
    created_model: type[CreatedT_co]  # the create response, which alone carries the password
    create_body: type[BodyT_co]
    password_field: str  # the password's name in the create body and response
    version_field: str  # the engine version's name in responses (the request always says "version")
    default_port: int
    uri_scheme: str
    user_field: str | None  # where an instance names its login user (Redis has none: password only)
    database_field: str | None  # where an instance names its database
    default_database: str  # the URI path when there is no database field (Redis: logical db 0)
    env: EnvNames

    # --- reading instances ------------------------------------------------------------------------

    def version_of(self, instance: Instance) -> str | None:
        return self._text(instance, self.version_field)

    def user_of(self, instance: Instance) -> str | None:
        return self._text(instance, self.user_field)

    def database_of(self, instance: Instance) -> str | None:
        return self._text(instance, self.database_field)

    def port_of(self, instance: Instance) -> int:
        return instance.port or self.default_port

    def password_of(self, created: Instance) -> str | None:
        """The one-time password of a create response (None if the API sent none)."""
        return _revealed(getattr(created, self.password_field, None))

    def supplied_password(self, body: CreateBody) -> str | None:
        """The password the caller put in a create body (None: the API generates one)."""
        return _revealed(getattr(body, self.password_field, None))

    def public(self, created: Instance) -> InstanceT_co:
        """An instance without its password (a create response becomes a plain instance)."""
        return self.model.model_validate(created.model_dump(exclude={self.password_field}))

    # --- connecting -------------------------------------------------------------------------------

    def connection_uri(self, instance: Instance, password: str | None = None) -> str | None:
        """``postgresql://user[:password]@host:port/db`` or ``redis://[:password@]host:port/0``.

        None until the instance has a host. Every part is percent-encoded, so no value from the API
        can change the URI's structure."""
        host = instance.floating_ip
        if not host:
            return None
        userinfo = quote(self.user_of(instance) or "", safe="")
        if password:
            userinfo += ":" + quote(password, safe="")
        at = f"{userinfo}@" if userinfo else ""
        path = self.database_of(instance) if self.database_field else self.default_database
        return f"{self.uri_scheme}://{at}{host}:{self.port_of(instance)}/{quote(path or '', safe='')}"

    def env_values(self, instance: Instance, password: str) -> list[tuple[str, str]]:
        """The variables of a credentials env file, in the order drivers' docs list them."""
        env = self.env
        values: list[tuple[str | None, str]] = [
            (env.host, instance.floating_ip or ""),
            (env.port, str(self.port_of(instance))),
            (env.user, self.user_of(instance) or ""),
            (env.password, password),
            (env.database, self.database_of(instance) or ""),
        ]
        uri = self.connection_uri(instance, password)
        if uri:
            values.append((env.uri, uri))
        return [(name, value) for name, value in values if name is not None]

    def _text(self, instance: Instance, field: str | None) -> str | None:
        value = getattr(instance, field, None) if field else None
        return value if isinstance(value, str) else None


def _revealed(secret: object) -> str | None:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else None


DATABASE: Final = Kind(
    name="database",
    collection="databases",
    label="PostgreSQL database",
    engine="PostgreSQL",
    engine_short="postgres",
    usual_purpose="an application",
    model=Database,
    created_model=CreatedDatabase,
    create_body=DatabaseCreate,
    password_field="db_password",
    version_field="db_version",
    default_port=5432,
    uri_scheme="postgresql",
    user_field="db_user",
    database_field="db_name",
    default_database="",
    env=EnvNames(
        host="PGHOST", port="PGPORT", user="PGUSER", password="PGPASSWORD", database="PGDATABASE", uri="DATABASE_URL"
    ),
)
REDIS: Final = Kind(
    name="redis",
    collection="redis",
    label="Redis instance",
    engine="Redis",
    engine_short="redis",
    usual_purpose="a cache",
    model=Redis,
    created_model=CreatedRedis,
    create_body=RedisCreate,
    password_field="password",
    version_field="version",
    default_port=6379,
    uri_scheme="redis",
    user_field=None,
    database_field=None,
    default_database="0",
    env=EnvNames(
        host="REDIS_HOST", port="REDIS_PORT", user=None, password="REDIS_PASSWORD", database=None, uri="REDIS_URL"
    ),
)

AnyKind = Kind[Instance, Instance, CreateBody]
KINDS: Final[dict[KindName, AnyKind]] = {DATABASE.name: DATABASE, REDIS.name: REDIS}
