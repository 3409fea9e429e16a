"""What differs between PostgreSQL and Redis instances, as data, so that one implementation serves both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from redu_mcp.models import (
    CreatedDatabase,
    CreatedRedis,
    Database,
    DatabaseCreate,
    Instance,
    Redis,
    RedisCreate,
    _CreateBody,
)

KindName = Literal["database", "redis"]


@dataclass(frozen=True)
class Kind:
    name: KindName
    collection: str  # the API path segment: /v1/<collection>
    label: str  # how to name one to a human
    model: type[Instance]
    created_model: type[Instance]  # the create response, which alone carries the password
    create_body: type[_CreateBody]
    password_field: str  # the name of the password field in the create body and response
    default_port: int
    uri_scheme: str

    def password_of(self, created: Instance) -> str | None:
        """The one-time password from a create response (None if the API sent none)."""
        secret = getattr(created, self.password_field, None)
        return secret.get_secret_value() if secret is not None else None

    def public(self, created: Instance) -> Instance:
        """The create response without its password."""
        return self.model.model_validate(created.model_dump(exclude={self.password_field}))


DATABASE: Final = Kind(
    name="database",
    collection="databases",
    label="PostgreSQL database",
    model=Database,
    created_model=CreatedDatabase,
    create_body=DatabaseCreate,
    password_field="db_password",
    default_port=5432,
    uri_scheme="postgresql",
)
REDIS: Final = Kind(
    name="redis",
    collection="redis",
    label="Redis instance",
    model=Redis,
    created_model=CreatedRedis,
    create_body=RedisCreate,
    password_field="password",
    default_port=6379,
    uri_scheme="redis",
)
KINDS: Final[dict[str, Kind]] = {DATABASE.name: DATABASE, REDIS.name: REDIS}
