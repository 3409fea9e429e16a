"""Pydantic shapes of the Redu public API (https://docs.redu.cloud/API/managed).

Responses carry only the fields declared here: anything else the API sends is ignored (a newer API
never breaks us, and nothing undeclared, such as a nested credential, can travel further). Only the
create responses declare a password (as ``SecretStr``). Free text from the API (descriptions, names
of look-ups) is scrubbed of URI passwords. Requests are strict (``extra="forbid"``) and carry the
documented defaults and constraints, so invalid input is refused before any HTTP call. The
constrained types below are the one definition of each rule; the MCP tools reuse them.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from redu_mcp.api._scrub import scrub

# --- constraints shared by requests and by the MCP tool arguments -----------------------------

#: Instance names: lowercase letters, digits and hyphens, starting with a letter, not ending in a
#: hyphen, at most 63 characters (a DNS label). The docs say "lowercase, hyphens"; the rest is
#: inferred and kept conservative so a name we accept is one the API accepts.
NAME_PATTERN: Final = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
#: PostgreSQL identifiers for ``db_name``/``db_user`` (inferred: plain unquoted identifiers).
PG_IDENTIFIER_PATTERN: Final = r"^[a-z_][a-z0-9_]{0,62}$"
PASSWORD_MIN, PASSWORD_MAX = 8, 128
MAX_SECURITY_GROUPS: Final = 16

PostgresVersion = Literal["16", "15", "14"]
RedisVersion = Literal["7", "6"]

#: Documented statuses. Anything else is "not ready yet, unknown status".
READY: Final = "ready"
ERROR: Final = "error"

#: The API's documented create defaults (what it uses when a field is left out).
DEFAULT_DB_NAME: Final = "app"
DEFAULT_DB_USER: Final = "appuser"
DEFAULT_POSTGRES_VERSION: Final[PostgresVersion] = "16"
DEFAULT_REDIS_VERSION: Final[RedisVersion] = "7"
DEFAULT_SECURITY_GROUPS: Final = ("default",)


def _opaque_id(value: Any) -> Any:
    """Flavor and network ids are opaque strings; accept a bare number for them too."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# The patterns already require at least one character, so no min_length beside them.
InstanceName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
OpaqueId = Annotated[str, BeforeValidator(_opaque_id), Field(min_length=1, max_length=128)]
KeypairName = Annotated[str, Field(min_length=1, max_length=255)]
SecurityGroupNames = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=255)]],
    Field(min_length=1, max_length=MAX_SECURITY_GROUPS),
]
Password = Annotated[SecretStr, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
PgIdentifier = Annotated[str, Field(pattern=PG_IDENTIFIER_PATTERN, max_length=63)]


# --- responses ---------------------------------------------------------------------------------


#: Text the API writes freely (a description): any ``scheme://user:password@`` in it is masked.
FreeText = Annotated[str, AfterValidator(scrub)]


class ApiModel(BaseModel):
    """A response object: declared fields only (anything else the API sends is ignored)."""

    model_config = ConfigDict(extra="ignore")


def _loose_text(value: Any) -> Any:
    """An id the docs do not promise: a number or a string is kept as text, anything else dropped."""
    if isinstance(value, bool):
        return None
    return str(value) if isinstance(value, (int, str)) else None


def _loose_names(value: Any) -> Any:
    """A list of names the docs do not promise: kept only when it is a list of strings."""
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


#: Fields an instance may carry beyond the documented ones (inferred: not in the docs' examples): kept
#: when present and well-formed, never an error when missing or odd.
LooseText = Annotated[str | None, BeforeValidator(_loose_text)]
LooseNames = Annotated[list[str] | None, BeforeValidator(_loose_names)]


class Instance(ApiModel):
    """What PostgreSQL and Redis instances have in common."""

    id: int
    name: str
    status: str = Field(description="provisioning, ready or error; any other value means not ready yet")
    floating_ip: str | None = Field(default=None, description="Public address; null until ready")
    port: int | None = None
    created_at: str | None = None
    # What it was created with, when the API reports it (inferred): a create of an existing name compares them.
    flavor_id: LooseText = None
    network_id: LooseText = None
    security_group_names: LooseNames = None


class Database(Instance):
    """A managed PostgreSQL instance as the API returns it (``GET /v1/databases/:id``)."""

    db_name: str | None = None
    db_user: str | None = None
    db_version: str | None = None


class Redis(Instance):
    """A managed Redis instance as the API returns it (``GET /v1/redis/:id``)."""

    version: str | None = None


class CreatedDatabase(Database):
    """The create response: the only place the password ever appears."""

    db_password: SecretStr | None = None


class CreatedRedis(Redis):
    """The create response: the only place the password ever appears."""

    password: SecretStr | None = None


class Flavor(ApiModel):
    id: OpaqueId
    name: FreeText
    vcpus: int | None = None
    ram: int | None = Field(default=None, description="MiB (inferred: the docs do not say)")
    disk: int | None = Field(default=None, description="GB (inferred: the docs do not say)")


class Network(ApiModel):
    id: OpaqueId
    name: FreeText


class Keypair(ApiModel):
    name: str
    public_key: str | None = None
    fingerprint: str | None = None


class SecurityGroupRule(ApiModel):
    direction: str | None = None
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None


class SecurityGroup(ApiModel):
    id: OpaqueId
    name: FreeText
    description: FreeText | None = None
    rules: list[SecurityGroupRule] = Field(default_factory=list)


class User(ApiModel):
    id: OpaqueId
    username: str
    email: str | None = None
    roles: list[str] = Field(default_factory=list)


# --- requests ----------------------------------------------------------------------------------


class CreateBody(BaseModel):
    """What both create bodies share. Build one with keyword arguments; ``to_json`` is the wire form."""

    model_config = ConfigDict(extra="forbid")

    name: InstanceName
    flavor_id: OpaqueId
    network_id: OpaqueId
    keypair_name: KeypairName
    security_group_names: SecurityGroupNames = Field(default_factory=lambda: list(DEFAULT_SECURITY_GROUPS))

    def to_json(self) -> dict[str, Any]:
        """The request body, with the password (if any) revealed for the wire."""
        body = self.model_dump(exclude_none=True)
        for key, value in body.items():
            if isinstance(value, SecretStr):
                body[key] = value.get_secret_value()
        return body


class DatabaseCreate(CreateBody):
    """Body of ``POST /v1/databases``. Note: the request says ``version``, the response ``db_version``."""

    db_name: PgIdentifier = Field(DEFAULT_DB_NAME, description="Database to create (default 'app')")
    db_user: PgIdentifier = Field(DEFAULT_DB_USER, description="Owner role to create (default 'appuser')")
    db_password: Password | None = None
    version: PostgresVersion = Field(DEFAULT_POSTGRES_VERSION, description="PostgreSQL major version")


class RedisCreate(CreateBody):
    """Body of ``POST /v1/redis``."""

    password: Password | None = None
    version: RedisVersion = Field(DEFAULT_REDIS_VERSION, description="Redis major version")
