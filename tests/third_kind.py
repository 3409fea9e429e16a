"""A third kind of instance, for tests only: a managed MySQL the Redu API does not offer.

What a new kind needs is its models and its ``Kind`` entry in the API library (the sandbox serves
any kind the library lists). Run as a script, this module registers the kind and then starts
``redu-mcp`` with the given arguments, so ``tests/test_third_kind.py`` can check that the MCP face
offers everything for it with no other edit: tools, resource template, prompt, wait and sentences.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import Field, SecretStr

from redu_mcp.api import KINDS, CreateBody, EnvNames, Instance, Kind, Password, PgIdentifier

MysqlVersion = Literal["8", "5.7"]


class Mysql(Instance):
    db_name: str | None = None
    db_user: str | None = None
    mysql_version: str | None = None


class CreatedMysql(Mysql):
    mysql_password: SecretStr | None = None


class MysqlCreate(CreateBody):
    db_name: PgIdentifier = Field("app", description="Database to create (default 'app')")
    db_user: PgIdentifier = Field("appuser", description="User to create (default 'appuser')")
    mysql_password: Password | None = None
    version: MysqlVersion = Field("8", description="MySQL major version")


MYSQL = Kind(
    name="mysql",  # type: ignore[arg-type]  # a test-only kind: not one of the API library's KindName
    collection="mysql",
    label="MySQL database",
    engine="MySQL",
    engine_short="mysql",
    usual_purpose="an application",
    model=Mysql,
    created_model=CreatedMysql,
    create_body=MysqlCreate,
    password_field="mysql_password",
    version_field="mysql_version",
    default_port=3306,
    uri_scheme="mysql",
    user_field="db_user",
    database_field="db_name",
    default_database="",
    env=EnvNames(
        host="MYSQL_HOST", port="MYSQL_PORT", user="MYSQL_USER", password="MYSQL_PWD", database="MYSQL_DATABASE",
        uri="MYSQL_URL",
    ),
)  # fmt: skip


def register() -> None:
    """Add the kind to the API library's kinds, before anything reads them."""
    KINDS[MYSQL.name] = MYSQL  # type: ignore[index]


if __name__ == "__main__":
    register()
    from redu_mcp.cli import main

    main(sys.argv[1:])
