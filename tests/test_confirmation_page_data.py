"""``--confirm human`` for changes that destroy data: the page shows the statement itself, and only a
person's approval there lets it run (a real PostgreSQL behind the sandbox: ``tests/data_engine.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from redu_mcp.sandbox import Sandbox
from redu_mcp.server import Settings
from tests.confirmation_pages import SHORT_LIFE, PageClient, human_server, read_page, use_page
from tests.data_engine import PASSWORD, Postgres, running_postgres, unique
from tests.helpers import CREATE_ARGS, AtAddress, connect


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with running_postgres() as running:
        yield running


def data_server(pg: Postgres, tmp_path: Path, lifetime: float | None = None) -> Any:
    settings = Settings(
        sandbox=True,
        engines=True,
        data="write",
        confirm="human",
        credentials_dir=tmp_path / "credentials",
        poll_interval_seconds=0.05,
    )
    server, _ = human_server(Sandbox(provisioner=AtAddress(pg.host, pg.port)), settings, lifetime)
    return server


async def new_database(client: Client) -> int:
    args = {**CREATE_ARGS, "name": "shop-db", "db_name": "shop", "db_user": "shopper", "db_password": PASSWORD}
    created = await client.call_tool("create_database", args)
    assert not created.is_error, created.content[0].text
    id: int = created.structured_content["instance"]["id"]
    waited = await client.call_tool("wait_for_ready", {"kind": "database", "id": id})
    assert waited.structured_content["ready"], waited.content[0].text
    return id


async def table_exists(pg: Postgres, table: str) -> bool:
    return bool(await pg.scalar("SELECT count(*) FROM pg_class WHERE relname = %s", table) == 1)


async def test_the_page_shows_the_statement_and_only_a_person_lets_it_run(pg: Postgres, tmp_path: Path, mode: str):
    table = unique()
    await pg.run(f"CREATE TABLE {table} (a int)")
    statement = f"DROP TABLE {table} /* <script>alert('from the agent')</script> */"
    shown: list[httpx2.Response] = []

    async def person(url: str) -> httpx2.Response:
        shown.append(await read_page(url))
        assert await table_exists(pg, table)  # nothing ran before the page was used
        return await use_page(url, "shop-db")

    pages = PageClient(person=person)
    async with connect(data_server(pg, tmp_path), mode, elicitation_callback=pages) as client:
        id = await new_database(client)
        result = await client.call_tool("run_sql", {"id": id, "query": statement})
    [approved] = await pages.finished()
    assert approved.status_code == 200 and not result.is_error, result.content[0].text
    assert not await table_exists(pg, table)
    page = shown[0].text
    assert "destroys data" in page and "shop-db" in page and f"<dd>{id}</dd>" in page
    assert f"DROP TABLE {table} /* &lt;script&gt;alert(&#x27;from the agent&#x27;)&lt;/script&gt; */" in page
    assert "<script" not in page


async def test_a_migration_that_destroys_data_waits_for_the_page(pg: Postgres, tmp_path: Path):
    table = unique()
    await pg.run(f"CREATE TABLE {table} (a int)")
    pages = PageClient()  # accepts, and never opens the page
    async with connect(data_server(pg, tmp_path, lifetime=SHORT_LIFE), elicitation_callback=pages) as client:
        id = await new_database(client)
        migration = {"id": id, "version": "0002", "name": "drop it", "sql": f"DROP TABLE {table};"}
        result = await client.call_tool("apply_migration", migration)
    assert result.is_error and "no person approved it on its confirmation page" in result.content[0].text
    assert await table_exists(pg, table) and len(pages.urls) == 1
