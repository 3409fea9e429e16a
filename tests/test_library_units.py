"""The API library's pure parts as specifications: deadlines, errors as data, per-kind connection
details, and scrubbing. (The client's HTTP behaviour is in ``test_client``.)"""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlsplit

import anyio
import pytest

from redu_mcp.api import (
    DATABASE,
    REDIS,
    Database,
    Redis,
    RetryFacts,
    ServerError,
    scrub,
    share_of_time_left,
    time_left,
    within,
)
from redu_mcp.provisioning.credentials import read_env, render_env

# --- deadlines ------------------------------------------------------------------------------------------


def test_no_deadline_means_no_time_limit():
    assert time_left() is None
    with within(None):
        assert time_left() is None


def test_the_sooner_deadline_wins_and_each_block_restores_the_enclosing_one():
    with within(10):
        outer = time_left()
        assert outer is not None and 9 < outer <= 10
        with within(100):  # later than the enclosing one: the enclosing one still holds
            inner = time_left()
            assert inner is not None and inner <= outer
        with within(1):
            inner = time_left()
            assert inner is not None and inner <= 1
        after = time_left()
        assert after is not None and 1 < after <= outer
    assert time_left() is None


def test_a_share_of_the_time_left_keeps_the_rest_for_what_follows():
    with within(10):
        with share_of_time_left(0.4):
            share = time_left()
            assert share is not None and 3.5 < share <= 4
        rest = time_left()
        assert rest is not None and rest > 9
    with share_of_time_left(0.5):
        assert time_left() is None  # half of no limit is no limit


def test_a_spent_deadline_shares_nothing():
    with within(0.01):
        time.sleep(0.02)
        with share_of_time_left(0.5):
            left = time_left()
            assert left is not None and left <= 0


async def test_concurrent_tasks_each_keep_their_own_deadline():
    seen: dict[str, float | None] = {}

    async def task(name: str, seconds: float) -> None:
        with within(seconds):
            await anyio.sleep(0.01)
            seen[name] = time_left()

    async with anyio.create_task_group() as tg:
        tg.start_soon(task, "short", 1)
        tg.start_soon(task, "long", 100)
    assert seen["short"] is not None and seen["short"] <= 1
    assert seen["long"] is not None and seen["long"] > 90


# --- errors are data ------------------------------------------------------------------------------------


def test_retry_facts_travel_on_a_copy_and_the_original_is_never_changed():
    original = ServerError("bad gateway", endpoint="GET /me", status=502, code="bad_gateway")
    facts = RetryFacts(attempts=4, elapsed=1.25, stopped_by="attempts", time_left=3.0)
    given_up = original.after_retrying(facts)
    assert given_up is not original and type(given_up) is ServerError
    assert given_up.retry == facts and original.retry is None
    assert (given_up.status, given_up.code, given_up.endpoint) == (502, "bad_gateway", "GET /me")
    assert str(original) == "GET /me: HTTP 502 bad_gateway: bad gateway"
    assert str(given_up) == "GET /me: HTTP 502 bad_gateway: bad gateway (gave up after 4 attempts in 1.2 s)"


# --- what differs between PostgreSQL and Redis ---------------------------------------------------------


def ready_database(**fields: object) -> Database:
    values: dict[str, object] = dict(
        id=3, name="orders", status="ready", floating_ip="203.0.113.9", port=5433, db_name="app", db_user="appuser"
    )
    values.update(fields)
    return Database.model_validate(values)


def test_connection_uris_follow_each_engines_convention():
    database = ready_database()
    cache = Redis(id=4, name="cache", status="ready", floating_ip="203.0.113.10", port=None)
    assert DATABASE.connection_uri(database) == "postgresql://appuser@203.0.113.9:5433/app"
    assert DATABASE.connection_uri(database, "pw") == "postgresql://appuser:pw@203.0.113.9:5433/app"
    assert REDIS.connection_uri(cache) == "redis://203.0.113.10:6379/0"  # the default port, logical db 0
    assert REDIS.connection_uri(cache, "pw") == "redis://:pw@203.0.113.10:6379/0"
    assert DATABASE.connection_uri(ready_database(floating_ip=None)) is None  # no host yet


def test_no_value_from_the_api_can_change_a_uris_structure():
    hostile = ready_database(db_user="a@b:c/d", db_name="x/../y?z#w")
    password = "p@ss:w/o#rd?%"
    uri = DATABASE.connection_uri(hostile, password)
    assert uri is not None
    parts = urlsplit(uri)
    assert (parts.hostname, parts.port, parts.query, parts.fragment) == ("203.0.113.9", 5433, "", "")
    assert parts.username == quote("a@b:c/d", safe="") and parts.password == quote(password, safe="")
    assert parts.path == "/" + quote("x/../y?z#w", safe="")


def test_env_values_name_what_each_driver_reads():
    database = dict(DATABASE.env_values(ready_database(), "s3cret-pw"))
    assert list(database) == ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "DATABASE_URL"]
    assert database["PGPASSWORD"] == "s3cret-pw" and database["PGPORT"] == "5433"
    cache = dict(REDIS.env_values(Redis(id=4, name="cache", status="ready", floating_ip="203.0.113.10"), "pw12345678"))
    assert list(cache) == ["REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_URL"]
    provisioning = dict(REDIS.env_values(Redis(id=4, name="cache", status="provisioning"), "pw12345678"))
    assert "REDIS_URL" not in provisioning and provisioning["REDIS_HOST"] == ""


def test_an_env_file_reads_back_exactly_and_quotes_what_a_shell_would_misread(tmp_path):
    password = 'it\'s $HOME `id` "x"'
    text = render_env(DATABASE, ready_database(name="we'ird\nname"), password)
    assert "\nname" not in text.split("\n", 1)[0]  # the name stays in its one comment line
    path = tmp_path / "db.env"
    path.write_text(text)
    values = read_env(path)
    assert values["PGPASSWORD"] == password
    assert values["PGUSER"] == "appuser"
    assert "PGPASSWORD='" in text  # single-quoted: no expansion in a shell


# --- scrubbing ------------------------------------------------------------------------------------------

SECRET = "S3cr3t/pa ss+wörd"


@pytest.mark.parametrize(
    "echo",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET, safe="").replace("%20", "+"),
        json.dumps(SECRET)[1:-1],
        SECRET.encode().hex(),
        SECRET.encode().hex().upper(),
    ],
    ids=["raw", "url", "form", "json", "hex", "HEX"],
)
def test_a_secret_is_scrubbed_in_every_form_an_echo_may_take(echo: str):
    text = scrub(f"invalid value {echo!s} for field", [SECRET])
    assert echo not in text and "[REDACTED]" in text


def test_uri_passwords_are_masked_even_when_unknown():
    text = scrub("could not connect to postgresql://admin:hunter2hunter2@10.0.0.5:5432/app")
    assert "hunter2" not in text and "postgresql://admin:[REDACTED]@10.0.0.5" in text


def test_scrubbing_comes_before_shortening():
    key = "sk-live-" + "k" * 40
    text = scrub("x" * 190 + key, [key], limit=200)
    assert "sk-live" not in text and "k" * 8 not in text


def test_the_kind_names_are_the_kinds():
    """``KindName`` (the type) and ``KINDS`` (the data) name the same kinds: the face reads only KINDS."""
    from typing import get_args

    from redu_mcp.api import KINDS, KindName

    assert list(get_args(KindName)) == list(KINDS)
