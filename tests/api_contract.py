"""The Redu public API as its documentation shows it: requests and responses as literals.

Written by hand from the contract note (``shared/notes/redu-api.md``, itself from docs.redu.cloud
``/API/managed``, ``/API/authentication``, ``/API/compute/ssh``, ``/API/network/security-group/list``),
and on purpose from nothing in ``redu_mcp``: the API library and the sandbox both build their paths,
bodies, ports and field names from ``redu_mcp.api.KINDS``, so checking one against the other would
check ``KINDS`` against itself. ``tests/test_api_contract.py`` checks both against these literals, so
a misreading of the API that they share fails there.

Values the docs show are copied as shown (``"usr_01HZX8YF2"``, ``"my-db"``); where a doc elides one
(``"…"``), a plausible value of the same type stands in. Nothing here is inferred beyond what the
note marks documented, except where a comment says so.
"""

from __future__ import annotations

from typing import Any, Final

#: Every request carries the key in this header (documented).
KEY_HEADER: Final = "x-api-key"

# --- GET /v1/me (documented) -------------------------------------------------------------------------------

ME_PATH: Final = "/v1/me"
ME: Final[dict[str, Any]] = {"id": "usr_01HZX8YF2", "username": "joe", "email": "joe@example.com", "roles": ["user"]}

# --- errors (documented: 401 and its envelope) ----------------------------------------------------------------

UNAUTHORIZED_STATUS: Final = 401
UNAUTHORIZED: Final[dict[str, Any]] = {"error": {"code": "unauthorized", "message": "Invalid API key"}}

# --- managed PostgreSQL (documented) ---------------------------------------------------------------------------

DATABASES_PATH: Final = "/v1/databases"
DATABASE_PATH: Final = "/v1/databases/{id}"
#: The create body's fields, all of them (the request says ``version``; the response ``db_version``).
DATABASE_CREATE_FIELDS: Final = frozenset(
    {
        "name",
        "db_name",
        "db_user",
        "db_password",
        "version",
        "flavor_id",
        "network_id",
        "keypair_name",
        "security_group_names",
    }
)
#: Documented defaults of the fields a create may leave out.
DATABASE_CREATE_DEFAULTS: Final[dict[str, Any]] = {
    "db_name": "app",
    "db_user": "appuser",
    "version": "16",
    "security_group_names": ["default"],
}
DATABASE_VERSIONS: Final = ("16", "15", "14")
#: The create response, exactly as the docs show it: the password is returned once, here only.
DATABASE_CREATED: Final[dict[str, Any]] = {
    "id": 1,
    "name": "my-db",
    "db_name": "app",
    "db_user": "appuser",
    "db_password": "the-plaintext-password-shown-once",
    "db_version": "16",
    "status": "provisioning",
    "floating_ip": None,
    "port": 5432,
    "created_at": "2026-05-30T12:00:00Z",
}
#: ``GET /v1/databases/:id``: the docs do not show it; the note says to assume the create shape minus
#: the password (inferred). Here: ready, with its address.
DATABASE_READY: Final[dict[str, Any]] = {
    "id": 1,
    "name": "my-db",
    "db_name": "app",
    "db_user": "appuser",
    "db_version": "16",
    "status": "ready",
    "floating_ip": "203.0.113.7",
    "port": 5432,
    "created_at": "2026-05-30T12:00:00Z",
}
POSTGRES_PORT: Final = 5432

# --- managed Redis (documented, the response partly cut in the docs) --------------------------------------------

REDIS_PATH_ALL: Final = "/v1/redis"
REDIS_PATH: Final = "/v1/redis/{id}"
REDIS_CREATE_FIELDS: Final = frozenset(
    {"name", "password", "version", "flavor_id", "network_id", "keypair_name", "security_group_names"}
)
REDIS_CREATE_DEFAULTS: Final[dict[str, Any]] = {"version": "7", "security_group_names": ["default"]}
REDIS_VERSIONS: Final = ("7", "6")
REDIS_CREATED: Final[dict[str, Any]] = {
    "id": 1,
    "name": "my-cache",
    "version": "7",
    "password": "redis-password-shown-once",  # "…shown once…" in the docs
    "status": "provisioning",
    "floating_ip": None,
    "port": 6379,
    "created_at": "2026-05-30T12:00:00Z",  # "…" in the docs
}
REDIS_READY: Final[dict[str, Any]] = {
    "id": 1,
    "name": "my-cache",
    "version": "7",
    "status": "ready",
    "floating_ip": "203.0.113.8",
    "port": 6379,
    "created_at": "2026-05-30T12:00:00Z",
}
REDIS_PORT: Final = 6379

#: A delete answers this, with no body (documented for both).
DELETED_STATUS: Final = 204

# --- look-ups (documented envelopes; flavors and networks inferred: items with id and name) ----------------------

KEYPAIRS_PATH: Final = "/v1/keypairs"
KEYPAIRS: Final[dict[str, Any]] = {
    "items": [
        {
            "name": "default-key",
            "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDocumentedExampleKey joe@laptop",
            "fingerprint": "SHA256:documentedexamplefingerprint",
        }
    ],
    "next_cursor": None,
}
#: Older doc revisions: keypairs come as a bare array, each wrapped (documented).
KEYPAIRS_WRAPPED: Final[list[dict[str, Any]]] = [{"keypair": item} for item in KEYPAIRS["items"]]

SECURITY_GROUPS_PATH: Final = "/v1/security_groups"
SECURITY_GROUPS: Final[dict[str, Any]] = {
    "items": [
        {
            "id": "sg-1",
            "name": "default",
            "description": "Default security group",
            "rules": [{"direction": "ingress", "protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432}],
        }
    ],
    "next_cursor": None,
}
FLAVORS_PATH: Final = "/v1/flavors"
FLAVORS: Final[dict[str, Any]] = {"items": [{"id": "m1.small", "name": "m1.small"}], "next_cursor": None}
NETWORKS_PATH: Final = "/v1/networks"
NETWORKS: Final[dict[str, Any]] = {"items": [{"id": "net-1", "name": "private"}], "next_cursor": None}

#: The instance list (``GET /v1/databases``): a bare JSON array on the docs' older pages (documented).
DATABASES_BARE: Final[list[dict[str, Any]]] = [DATABASE_READY]
#: … and the newer envelope (documented for lists), cut into two pages by ``next_cursor``; the next page
#: is asked for with ``?cursor=<next_cursor>`` (inferred).
REDIS_PAGES: Final[dict[str | None, dict[str, Any]]] = {
    None: {"items": [REDIS_READY], "next_cursor": "page-2"},
    "page-2": {"items": [{**REDIS_READY, "id": 2, "name": "my-cache-2"}], "next_cursor": None},
}
