"""Texts that are true at each setting (issue 21, items 3-6), proved through real clients.

* The delete description says what happens with and without a client that can ask, and differs
  under ``--confirm human``, as do the instructions.
* A wrong-kind id names the other instance and asks to confirm with the user.
* A create of an existing name reports every field that differs and the saved credentials file.
* list_create_options suggests a value per required field when the account's data decides it.
* get/list carry the connection details (never the password); a delete removes the credentials file;
  an id this server deleted is reported as deleted, to the caller who deleted it and nobody else;
  whoami in the built-in sandbox says so.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp.types import ElicitRequestParams, ElicitResult

from redu_mcp.api import KINDS, DatabaseCreate, Flavor, Keypair, Network
from redu_mcp.provisioning.create import compare_with_request
from redu_mcp.provisioning.credentials import CredentialStore, read_env
from redu_mcp.provisioning.deletions import Deletion, DeletionRecord
from redu_mcp.provisioning.lookups import CreateLookups
from redu_mcp.provisioning.suggestions import suggest
from redu_mcp.sandbox import Sandbox
from redu_mcp.server import build_server
from tests.helpers import (
    ALICE,
    BOB,
    CREATE_ARGS,
    FAST_RETRY,
    connect,
    create,
    http_client,
    seed_instance,
    serving_mcp_http,
    two_users,
)

DATABASE = KINDS["database"]


async def yes(context: Any, params: ElicitRequestParams) -> ElicitResult:
    """A client whose user says yes to every question."""
    return ElicitResult(action="accept", content={"confirm": True})


# --- the delete description and the instructions, at each --confirm -----------------------------------


async def test_the_delete_description_is_true_under_auto(make_server, sandbox, mode):
    async with connect(make_server(), mode, elicitation_callback=yes) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        text = tools["delete_database"].description or ""
        assert "Without both, nothing is deleted" not in text  # it was false
        assert "A client that can ask the user asks, and only the user's yes deletes" in text
        assert "otherwise the matching confirm_name deletes, and a call without it is refused" in text
        # True: a client that can ask deletes on the user's yes, without any confirm_name.
        id = await seed_instance(sandbox, "database", "load-2")
        done = await client.call_tool("delete_database", {"id": id})
    assert done.structured_content["deleted"] is True and sandbox.count("DELETE") == 1


async def test_under_confirm_human_descriptions_and_instructions_say_a_person_approves(make_server, mode):
    async with connect(make_server(), mode) as client:
        auto_tools = {t.name: t.description for t in (await client.list_tools()).tools}
        auto_instructions = client.instructions or ""
    async with connect(make_server(confirm="human"), mode) as client:
        human_tools = {t.name: t.description for t in (await client.list_tools()).tools}
        human_instructions = client.instructions or ""
    for kind in ("database", "redis"):
        text = human_tools[f"delete_{kind}"] or ""
        assert text != auto_tools[f"delete_{kind}"]
        assert "only a person approves it on a confirmation page" in text
        assert "a client that cannot open such a page is refused" in text
    assert human_instructions != auto_instructions
    assert "only a person approves it on a confirmation page" in human_instructions
    assert "confirm_name alone; a client that cannot open such a page is refused" in human_instructions
    assert "confirm_name set to the exact current name deletes" in auto_instructions


# --- a wrong-kind id ----------------------------------------------------------------------------------


async def test_an_id_of_the_other_kind_names_it_and_never_points_at_a_delete(make_server, sandbox, mode):
    id = await seed_instance(sandbox, "redis", "load-1")
    async with connect(make_server(), mode) as client:
        texts = [
            (await client.call_tool("get_database", {"id": id})).content[0].text,
            (await client.call_tool("wait_for_ready", {"kind": "database", "id": id, "timeout_seconds": 2}))
            .content[0]
            .text,
        ]
    for text in texts:
        assert f"The Redis instance 'load-1' (id {id}) is another instance" in text
        assert "confirm with the user that 'load-1' is the one they mean" in text
        assert "delete" not in text


# --- a create of an existing name -----------------------------------------------------------------


def test_every_field_the_api_reports_is_compared():
    body = DatabaseCreate(
        name="orders", flavor_id="2", network_id="net-public", keypair_name="k", version="15",
        security_group_names=["db-clients", "default"], db_name="app",
    )  # fmt: skip
    existing = DATABASE.model.model_validate(
        {"id": 1, "name": "orders", "status": "ready", "flavor_id": 1, "network_id": "net-private",
         "security_group_names": ["default", "db-clients"], "db_name": "app", "db_user": "appuser", "db_version": "16"}
    )  # fmt: skip
    compared = compare_with_request(DATABASE, body, existing)
    assert [(d.field, d.requested, d.existing) for d in compared.differences] == [
        ("flavor_id", "2", "1"),
        ("network_id", "net-public", "net-private"),
        ("version", "15", "16"),
    ]  # the same groups in another order are no difference; db_name and db_user match
    assert compared.unreported == ("keypair_name",)


@pytest.mark.parametrize("odd", [{"a": 1}, ["1"], True, None, 3.5])
def test_an_odd_reported_value_is_not_compared_and_breaks_nothing(odd):
    existing = DATABASE.model.model_validate({"id": 1, "name": "orders", "status": "ready", "flavor_id": odd})
    body = DatabaseCreate(name="orders", **CREATE_ARGS)
    compared = compare_with_request(DATABASE, body, existing)
    assert "flavor_id" in compared.unreported and not [d for d in compared.differences if d.field == "flavor_id"]


async def test_an_existing_name_created_elsewhere_says_no_file_is_saved(make_server, sandbox, mode):
    await seed_instance(sandbox, "redis", "cache")  # behind this server's back: no file here
    posts = sandbox.count("POST")
    async with connect(make_server(), mode) as client:
        again = await client.call_tool("create_redis", dict(CREATE_ARGS, name="cache", password="my-own-secret-1"))
    result = again.structured_content
    assert result["created"] is False and result["password_delivery"] == "unknown"
    assert result["credentials_file"] is None and result["differences"] is None
    assert "no credentials file for it is saved here" in result["message"]
    assert "The password in this request was not used." in result["message"]
    assert "my-own-secret-1" not in json.dumps(result) and sandbox.count("POST") == posts


# --- suggestions -----------------------------------------------------------------------------------


def lookups(flavors: list[dict[str, Any]], networks: list[str], keypairs: list[str]) -> CreateLookups:
    return CreateLookups(
        flavors=[Flavor.model_validate(f) for f in flavors],
        networks=[Network(id=f"net-{n}", name=n) for n in networks],
        keypairs=[Keypair(name=k) for k in keypairs],
        security_groups=[],
    )


SMALL = {"id": "s", "name": "small", "vcpus": 1, "ram": 1024, "disk": 10}
LARGE = {"id": "l", "name": "large", "vcpus": 4, "ram": 8192, "disk": 80}


@pytest.mark.parametrize(
    "flavors, networks, keypairs, expected",
    [
        ([LARGE], ["lan"], ["k1"], {"flavor_id": ("l", "only_one"), "network_id": ("net-lan", "only_one"),
                                    "keypair_name": ("k1", "only_one")}),
        ([LARGE, SMALL], ["public", "Private"], ["k1", "k2"], {"flavor_id": ("s", "smallest"),
                                                             "network_id": ("net-Private", "named_private")}),
        ([LARGE, SMALL], ["public", "default"], [], {"flavor_id": ("s", "smallest"),
                                                    "network_id": ("net-default", "named_default")}),
        ([SMALL, dict(SMALL, id="s2")], ["public", "office"], ["k1"], {"keypair_name": ("k1", "only_one")}),
        ([SMALL, {"id": "x", "name": "mystery"}], ["private", "private"], ["k1", "k2"], {}),
        ([], [], [], {}),
    ],
    ids=["single-choices", "smallest-and-private", "default-network", "a-tie", "unknown-size-two-privates", "none"],
)  # fmt: skip
def test_a_value_is_suggested_only_when_the_data_decides_it(flavors, networks, keypairs, expected):
    suggested = suggest(lookups(flavors, networks, keypairs))
    got = {
        field: (value.value, value.because)
        for field in ("flavor_id", "network_id", "keypair_name")
        if (value := getattr(suggested, field)) is not None
    }
    assert got == expected


async def test_list_create_options_suggests_with_the_reason(make_server, mode):
    async with connect(make_server(), mode) as client:
        options = (await client.call_tool("list_create_options", {})).structured_content
    suggested = options["suggested"]
    assert suggested["flavor_id"]["value"] == "1" and "smallest" in suggested["flavor_id"]["reason"]
    assert "ask the user before choosing a bigger one" in suggested["flavor_id"]["reason"]
    assert suggested["network_id"]["value"] == "net-private" and "who can reach" in suggested["network_id"]["reason"]
    assert suggested["keypair_name"] == {"value": "default-key", "reason": "the only keypair of this account"}


# --- connection details, deletes, deleted ids, whoami -------------------------------------------------


async def test_get_and_list_carry_how_to_connect_but_never_the_password(make_server, credentials_dir, mode):
    async with connect(make_server(), mode) as client:
        created = await create(client, "database", "orders")
        id, path = created["instance"]["id"], created["credentials_file"]
        await client.call_tool("wait_for_ready", {"kind": "database", "id": id})
        got = (await client.call_tool("get_database", {"id": id})).structured_content
        listed = (await client.call_tool("list_databases", {})).structured_content["instances"][0]
        resource = json.loads((await client.read_resource(f"redu://databases/{id}")).contents[0].text)
    password = read_env(Path(path))["PGPASSWORD"]
    for shown in (got, listed, resource):
        assert shown["uri"] == f"postgresql://appuser@{shown['host']}:5432/app"  # no password in the URI
        assert (shown["port"], shown["db_user"], shown["db_name"]) == (5432, "appuser", "app")
        assert shown["credentials_file"] == path and Path(path).parent == credentials_dir
        assert password not in json.dumps(shown)


async def test_a_delete_removes_only_its_own_credentials_file(make_server, credentials_dir, mode):
    async with connect(make_server(), mode) as client:
        kept = Path((await create(client, "database", "kept"))["credentials_file"])
        doomed = await create(client, "database", "doomed")
        path = Path(doomed["credentials_file"])
        # A file named like a later instance's, but not its (another id in the first line): left alone.
        stranger = credentials_dir / f"database-doomed-{doomed['instance']['id'] + 1}.env"
        stranger.write_text("# Redu Cloud PostgreSQL database 'doomed' (id 999), saved by someone else\n")
        os.chmod(stranger, 0o600)
        done = await client.call_tool("delete_database", {"id": doomed["instance"]["id"], "confirm_name": "doomed"})
    assert f"Its credentials file {path} was removed too." in done.structured_content["message"]
    assert not path.exists() and kept.exists() and stranger.exists()


def test_the_store_removes_a_file_another_process_saved_and_nothing_else(tmp_path: Path):
    root = tmp_path / "credentials"
    fields = {
        "id": 7,
        "name": "orders",
        "status": "ready",
        "floating_ip": "10.0.0.1",
        "created_at": "2026-01-01T00:00:00Z",
    }
    instance = DATABASE.model.model_validate(fields)
    saved = CredentialStore(root).save("local", DATABASE, instance, "pw-1234567890")
    other_replica = CredentialStore(root)  # shares the root, never wrote the file
    assert other_replica.path_of("local", DATABASE, instance) == saved
    # The same id, but another instance (ids are reused), or another principal: never removed.
    reused = DATABASE.model.model_validate({**fields, "created_at": "2026-02-02T00:00:00Z"})
    assert other_replica.remove("local", DATABASE, reused) is None and saved.exists()
    assert other_replica.remove("user:mallory", DATABASE, instance) is None and saved.exists()
    assert other_replica.remove("local", DATABASE, instance) == saved and not saved.exists()
    assert other_replica.remove("local", DATABASE, instance) is None  # nothing left to remove
    # A file under the name the store would use, holding another instance's credentials: never removed.
    impostor = CredentialStore(root).save("local", DATABASE, reused, "pw-0987654321")
    assert impostor.name == saved.name
    assert other_replica.remove("local", DATABASE, instance) is None and impostor.exists()


def test_the_deletion_record_is_bounded_and_per_caller():
    record = DeletionRecord(size=2)
    at = datetime.datetime.now(datetime.UTC)
    for id in (1, 2, 3):
        record.remember("alice", Deletion("database", id, f"db-{id}", at, "user:alice", "the user"))
    assert record.find("alice", "database", 1) is None  # the oldest is forgotten first
    assert record.find("alice", "database", 3) is not None and record.find("alice", "redis", 3) is None
    assert record.find("bob", "database", 3) is None


async def test_a_deleted_id_is_reported_as_deleted_when_and_by_whom(make_server, mode):
    async with connect(make_server(), mode, elicitation_callback=yes) as client:
        id = (await create(client, "redis", "load-1"))["instance"]["id"]
        await client.call_tool("delete_redis", {"id": id})
        got = (await client.call_tool("get_redis", {"id": id})).content[0].text
        again = (await client.call_tool("delete_redis", {"id": id})).structured_content["message"]
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    for text in (got, again):
        assert f"Redis instance 'load-1' (id {id}) was deleted through this server at {today} " in text
        assert "by a local client (confirmed by the user)" in text


async def test_another_users_deletion_is_never_told(make_settings):
    """Pass-through: Alice deletes her instance; Bob asking about the same id learns nothing of it."""
    sandbox = two_users()
    settings = make_settings(transport="http", auth_passthrough=True)
    async with serving_mcp_http(settings, sandbox) as (url, _):
        async with http_client(url, bearer=ALICE) as alice:
            id = (await create(alice, "database", "alice-secret-project"))["instance"]["id"]
            await alice.call_tool("delete_database", {"id": id, "confirm_name": "alice-secret-project"})
            mine = (await alice.call_tool("get_database", {"id": id})).content[0].text
        async with http_client(url, bearer=BOB) as bob:
            theirs = (await bob.call_tool("get_database", {"id": id})).content[0].text
            gone = (await bob.call_tool("delete_database", {"id": id, "confirm_name": "x"})).structured_content
    assert "was deleted through this server" in mine and "Redu user usr_alice" in mine
    for text in (theirs, gone["message"]):
        assert "alice" not in text and "deleted through this server" not in text
        assert f"no PostgreSQL database with id {id}" in text


async def test_whoami_in_the_sandbox_never_claims_the_real_api(make_server, mode):
    async with connect(make_server(), mode) as client:
        me = (await client.call_tool("whoami", {})).structured_content
    assert me["api_url"] is None and me["sandbox"] is True and "built-in sandbox" in me["message"]
    assert "api.redu.cloud" not in json.dumps(me)


def test_a_server_on_a_sandbox_client_still_builds(make_settings):
    assert build_server(make_settings(), client=Sandbox().client(retry=FAST_RETRY))
