"""The data layer against a real PostgreSQL: run_sql's guards, values, caps, errors, pools, secrets.

The attacker's statements of issue 19 run at ``read`` twice: through the classifier (refused in
words, or sent) and with the classifier bypassed, to prove PostgreSQL itself holds the line. Either
way a separate connection then checks that nothing changed. The classifier and value conversion
are also tested on their own (no engine needed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from redu_mcp.data import (
    Failed,
    NeedsConfirmation,
    Pools,
    PostgresOptions,
    Refused,
    SqlResult,
    Statement,
    Unavailable,
    Unparseable,
    check_connection,
    classify,
    run_sql,
)
from redu_mcp.data._results import RowCollector
from redu_mcp.data._run import parameter_text
from redu_mcp.data._values import convert, parse_array
from tests.data_engine import (
    PASSWORD,
    Postgres,
    blackhole,
    closed_port,
    running_postgres,
    silent_listener,
    unique,
)

# --- the classifier (no engine) -------------------------------------------------------------------


def _one(sql: str) -> Statement:
    found = classify(sql)
    assert isinstance(found, tuple) and len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("BEGIN", "transaction_control"),
        ("COMMIT", "transaction_control"),
        ("ROLLBACK", "transaction_control"),
        ("SAVEPOINT a", "transaction_control"),
        ("PREPARE TRANSACTION 'x'", "transaction_control"),
        ("SET TRANSACTION READ WRITE", "session_control"),
        ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "session_control"),
        ("SET ROLE postgres", "session_control"),
        ("SET SESSION AUTHORIZATION postgres", "session_control"),
        ("SET search_path = evil", "session_control"),
        ("RESET ALL", "session_control"),
        ("DISCARD ALL", "session_control"),
        ("PREPARE p AS SELECT 1", "session_control"),
        ("DECLARE c CURSOR FOR SELECT 1", "session_control"),
        ("COPY t TO PROGRAM 'id'", "copy_program"),
        ("COPY t FROM PROGRAM 'curl evil'", "copy_program"),
        ("COPY t FROM '/etc/passwd'", "copy_file"),
        ("COPY (SELECT 1) TO '/tmp/x'", "copy_file"),
        ("COPY t TO STDOUT", "copy_client"),
        ("COPY t FROM STDIN", "copy_client"),
        ("LISTEN x", "listen_notify"),
        ("NOTIFY x", "listen_notify"),
        ("UNLISTEN *", "listen_notify"),
        ("LOAD 'plugin'", "load"),
        ("ALTER ROLE CURRENT_USER PASSWORD 'x'", "role_management"),
        ("CREATE ROLE r", "role_management"),
        ("DROP ROLE r", "role_management"),
    ],
)
def test_refused_forms(sql: str, reason: str) -> None:
    assert _one(sql).refused == reason


@pytest.mark.parametrize(
    ("sql", "reasons"),
    [
        ("DROP TABLE t", ("drop",)),
        ("DROP SCHEMA s CASCADE", ("drop",)),
        ("DROP INDEX i", ("drop",)),
        ("TRUNCATE t", ("truncate",)),
        ("DELETE FROM t", ("delete_without_where",)),
        ("UPDATE t SET a = 1", ("update_without_where",)),
        ("ALTER TABLE t DROP COLUMN a", ("alter_drop",)),
        ("ALTER TABLE t ADD COLUMN b int, DROP CONSTRAINT c", ("alter_drop",)),
        ("ALTER DOMAIN d DROP CONSTRAINT c", ("alter_drop",)),
        ("DO $$BEGIN PERFORM 1; END$$", ("do_block",)),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", ("merge_delete",)),
        ("DROP OWNED BY CURRENT_USER", ("drop_owned",)),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", ("delete_without_where",)),
        ("WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u", ("update_without_where",)),
        ("EXPLAIN ANALYZE DELETE FROM t", ("delete_without_where",)),
        # not destructive
        ("DELETE FROM t WHERE id = 1", ()),
        ("UPDATE t SET a = 1 WHERE id = $1", ()),
        ("EXPLAIN DELETE FROM t", ()),  # EXPLAIN without ANALYZE does not run it
        ("EXPLAIN (ANALYZE false) DELETE FROM t", ()),
        ("ALTER TABLE t ADD COLUMN b int", ()),
        ("CREATE TABLE t (a int)", ()),
        ("SELECT * FROM t", ()),
    ],
)
def test_destructive_forms(sql: str, reasons: tuple[str, ...]) -> None:
    assert _one(sql).destructive == reasons


def test_classification_names_kind_tables_and_parameters() -> None:
    statement = _one("WITH recent AS (SELECT * FROM shop.orders WHERE at > $2) SELECT * FROM recent JOIN items ON $1")
    assert statement.kind == "select"
    assert statement.tables == ("shop.orders", "items")  # the CTE's name is not a table
    assert statement.parameters == 2
    assert statement.refused is None and statement.destructive == ()
    writes = _one("WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d")
    assert writes.writes_in_cte and writes.kind == "select"
    assert _one("SELECT * INTO copy FROM t").kind == "create"
    assert _one("DROP TABLE a.b, c").tables == ("a.b", "c")
    assert _one("VACUUM t").kind == "maintenance"


def test_statements_are_split_with_their_text_and_offsets() -> None:
    sql = "COMMIT; /* why */ DROP TABLE t;\nSELECT 'a;b' -- end"
    found = classify(sql)
    assert isinstance(found, tuple)
    assert [(s.kind, s.text) for s in found] == [
        ("transaction", "COMMIT"),
        ("drop", "DROP TABLE t"),
        ("select", "SELECT 'a;b' -- end"),
    ]
    assert all(sql[s.start : s.start + len(s.text)] == s.text for s in found)
    assert classify("-- nothing but a comment\n") == ()


def test_unparseable_text_says_where() -> None:
    found = classify("SELECT 1;\nSELEC 2")
    assert isinstance(found, Unparseable)
    assert found.position == 11 and "SELEC" in found.message


# --- values and caps (no engine) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "oid", "expected"),
    [
        ("t", 16, True),
        ("9007199254740993", 20, 9007199254740993),
        ("1.5", 701, 1.5),
        ("NaN", 701, "NaN"),
        ("-Infinity", 700, "-Infinity"),
        ("12345678901234567890.000000000001", 1700, "12345678901234567890.000000000001"),
        ('{"a": [1, 2.5, null], "b": 1e400}', 3802, {"a": [1, 2.5, None], "b": "1e400"}),
        ("\\x00ff", 17, {"$bytes_base64": "AP8="}),
        ("2024-05-01 10:00:00.5+05:30", 1184, "2024-05-01T10:00:00.5+05:30"),
        ("2024-05-01 10:00:00+02", 1184, "2024-05-01T10:00:00+02:00"),
        ("2024-05-01 10:00:00", 1114, "2024-05-01T10:00:00"),
        ("infinity", 1114, "infinity"),
        ("0044-03-15 BC", 1082, "0044-03-15 BC"),
        ("10:00:00+02", 1266, "10:00:00+02:00"),
        ("P1DT2H", 1186, "P1DT2H"),
        ("550e8400-e29b-41d4-a716-446655440000", 2950, "550e8400-e29b-41d4-a716-446655440000"),
        ("not a number", 23, "not a number"),  # never raises: the text stays
    ],
)
def test_values_convert_exactly(text: str, oid: int, expected: object) -> None:
    value = convert(text, oid)
    assert value == expected
    json.dumps(value, allow_nan=False)


def test_arrays_become_lists() -> None:
    assert convert('{"a b","c\\"d",NULL,"NULL",x}', 1009, (25, ",")) == ["a b", 'c"d', None, "NULL", "x"]
    assert convert("{{1,2},{3,NULL}}", 1007, (23, ",")) == [[1, 2], [3, None]]
    assert convert("[0:1]={1,2}", 1007, (23, ",")) == [1, 2]
    assert parse_array("{(1,1),(0,0);(2,2),(1,1)}", ";", lambda item: item) == ["(1,1),(0,0)", "(2,2),(1,1)"]
    assert convert("{1,2", 1007, (23, ",")) == "{1,2"  # malformed: the text stays


def test_parameters_are_sent_as_text() -> None:
    assert [parameter_text(v) for v in (None, True, 3, 1.5, "x", [1, "a"], {"k": None})] == [
        None,
        "true",
        "3",
        "1.5",
        "x",
        '[1, "a"]',
        '{"k": null}',
    ]
    assert parameter_text(float("inf")) == "Infinity" and parameter_text(float("nan")) == "NaN"


def test_collector_keeps_whole_rows_under_the_caps() -> None:
    collector = RowCollector(max_rows=2, max_cell_chars=16, max_total_chars=1000)
    collector.set_columns([25, 23])
    for row in (["short", "1"], ["x" * 40, "2"], ["third", "3"]):
        collector.add(row)
    assert collector.rows == [("short", 1), ("x" * 16, 2)]
    assert collector.cut_cells == [(1, 0)] and collector.cut == "max_rows" and collector.received == 3

    narrow = RowCollector(max_rows=50, max_cell_chars=16, max_total_chars=40)
    narrow.set_columns([25])
    for _ in range(5):
        narrow.add(["0123456789"])
    assert len(narrow.rows) == 2 and narrow.cut == "max_chars"


def test_options_refuse_verification_without_a_root_certificate() -> None:
    with pytest.raises(ValueError, match="root certificate"):
        PostgresOptions(sslmode="verify-full")
    with pytest.raises(ValueError, match="sslmode"):
        PostgresOptions(sslmode="sometimes")


def test_importing_the_data_layer_loads_no_driver() -> None:
    code = (
        "import sys, redu_mcp.data\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool', 'pglast')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- against PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with running_postgres() as running:
        yield running


FAST = PostgresOptions(statement_timeout_ms=2_000, lock_timeout_ms=300, connect_timeout_seconds=2)


@pytest.fixture
async def pools():
    pools = Pools(FAST)
    yield pools
    await pools.aclose()


@pytest.fixture
async def victim(pg: Postgres):
    """A table, a sequence and their rows, as the attacker finds them."""
    table = unique("victim")
    await pg.run(
        f"CREATE TABLE {table} (id int PRIMARY KEY, secret text); "
        f"INSERT INTO {table} VALUES (1, 'keep'), (2, 'me'); "
        f"CREATE SEQUENCE {table}_seq"
    )
    return table


async def _state(pg: Postgres, table: str) -> tuple[object, ...]:
    """What must not change: the rows, the sequence, the session defaults of a new connection."""
    async with await pg.connect() as conn:
        rows = await (await conn.execute(f"SELECT id, secret FROM {table} ORDER BY id".encode())).fetchall()
        seq = await (await conn.execute(f"SELECT last_value, is_called FROM {table}_seq".encode())).fetchone()
        temp = await (await conn.execute(b"SELECT count(*) FROM pg_class WHERE relpersistence = 't'")).fetchone()
        defaults = await (
            await conn.execute(b"SELECT setting FROM pg_settings WHERE name = 'default_transaction_read_only'")
        ).fetchone()
    return tuple(rows), seq, temp, defaults


async def test_read_returns_typed_json_values(pg: Postgres, pools: Pools) -> None:
    result = await run_sql(
        pools,
        pg.target(),
        "SELECT 1::int AS i, 2.50::numeric(5,2) AS n, 'NaN'::float8 AS f, now() AS ts, "
        "'infinity'::timestamptz AS inf, '\\x0102'::bytea AS b, '{\"k\": [1]}'::jsonb AS j, "
        "ARRAY[1, NULL]::int[] AS a, '1 day 2 hours'::interval AS iv, "
        "'10.0.0.1'::inet AS ip, '[1,5)'::int4range AS r, $1::date AS d",
        ["2024-02-29"],
        mode="read",
    )
    assert isinstance(result, SqlResult), result
    assert [(c.name, c.type) for c in result.columns] == [
        ("i", "integer"),
        ("n", "numeric"),
        ("f", "double precision"),
        ("ts", "timestamp with time zone"),
        ("inf", "timestamp with time zone"),
        ("b", "bytea"),
        ("j", "jsonb"),
        ("a", "integer[]"),
        ("iv", "interval"),
        ("ip", "inet"),
        ("r", "int4range"),
        ("d", "date"),
    ]
    (row,) = result.rows
    assert row[0] == 1 and row[1] == "2.50" and row[2] == "NaN"
    assert isinstance(row[3], str) and row[3][10] == "T" and row[3][-6] in "+-"
    assert row[4:] == (
        "infinity",
        {"$bytes_base64": "AQI="},
        {"k": [1]},
        [1, None],
        "P1DT2H",
        "10.0.0.1",
        "[1,5)",
        "2024-02-29",
    )
    assert result.command == "SELECT 1" and not result.committed and not result.more_rows
    json.dumps(result.rows, allow_nan=False)


async def test_dates_are_read_in_the_databases_order(pg: Postgres, pools: Pools) -> None:
    """Only the output style is set for the call: input keeps the database's DateStyle (MDY here)."""
    assert await pg.scalar("SHOW DateStyle") == "ISO, MDY"
    result = await run_sql(pools, pg.target(), "SELECT '03/04/2024'::date", mode="read")
    assert isinstance(result, SqlResult) and result.rows == (("2024-03-04",),)


async def test_user_types_are_named(pg: Postgres, pools: Pools) -> None:
    mood = unique("mood")
    await pg.run(f"CREATE TYPE {mood} AS ENUM ('ok', 'sad')")
    result = await run_sql(pools, pg.target(), f"SELECT 'ok'::{mood} AS m", mode="read")
    assert isinstance(result, SqlResult)
    assert result.columns[0].type == mood and result.rows == (("ok",),)


async def test_parameters_are_bound_by_the_server(pg: Postgres, pools: Pools, victim: str) -> None:
    hostile = "1; DROP TABLE " + victim
    result = await run_sql(
        pools, pg.target(), f"SELECT count(*) FROM {victim} WHERE secret = $1", [hostile], mode="read"
    )
    assert isinstance(result, SqlResult) and result.rows == ((0,),)
    # A literal % means itself (no client-side placeholders to escape).
    like = await run_sql(
        pools, pg.target(), f"SELECT id FROM {victim} WHERE secret LIKE 'k%' AND id = $1", [1], mode="read"
    )
    assert isinstance(like, SqlResult) and like.rows == ((1,),)
    wrong = await run_sql(pools, pg.target(), "SELECT $1, $2", ["only one"], mode="read")
    assert isinstance(wrong, Refused) and wrong.reason == "parameter_count"
    assert (wrong.parameters_expected, wrong.parameters_given) == (2, 1)
    assert await pg.scalar(f"SELECT count(*) FROM {victim}") == 2


async def test_a_big_read_stops_at_the_cap(pg: Postgres, pools: Pools) -> None:
    result = await run_sql(pools, pg.target(), "SELECT g FROM generate_series(1, 5000000) g", mode="read", max_rows=5)
    assert isinstance(result, SqlResult), result
    assert result.rows == ((1,), (2,), (3,), (4,), (5,))
    assert result.more_rows and result.cut == "max_rows" and result.rows_not_shown is None
    # The connection was cancelled cleanly and goes on serving.
    again = await run_sql(pools, pg.target(), "SELECT 42", mode="read")
    assert isinstance(again, SqlResult) and again.rows == ((42,),)


async def test_a_big_write_completes_and_counts_what_is_not_shown(pg: Postgres, pools: Pools) -> None:
    table = unique()
    await pg.run(f"CREATE TABLE {table} (id int)")
    result = await run_sql(
        pools,
        pg.target(),
        f"INSERT INTO {table} SELECT generate_series(1, 1000) RETURNING id",
        mode="write",
        max_rows=3,
    )
    assert isinstance(result, SqlResult), result
    assert result.rows == ((1,), (2,), (3,)) and result.rows_affected == 1000
    assert result.more_rows and result.rows_not_shown == 997 and result.committed
    assert await pg.scalar(f"SELECT count(*) FROM {table}") == 1000


async def test_cells_and_total_characters_are_capped(pg: Postgres) -> None:
    options = PostgresOptions(max_cell_chars=100, max_total_chars=1_000)
    pools = Pools(options)
    try:
        result = await run_sql(pools, pg.target(), "SELECT repeat('x', 5000), 'short'", mode="read")
        assert isinstance(result, SqlResult)
        assert result.rows == (("x" * 100, "short"),) and result.cut_cells == ((0, 0),)
        wide = await run_sql(pools, pg.target(), "SELECT repeat('y', 90) FROM generate_series(1, 40)", mode="read")
        assert isinstance(wide, SqlResult)
        assert 0 < len(wide.rows) < 40 and wide.cut == "max_chars" and wide.more_rows
    finally:
        await pools.aclose()


async def test_a_write_commits_only_when_it_succeeds(pg: Postgres, pools: Pools) -> None:
    table = unique()
    await pg.run(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    ok = await run_sql(pools, pg.target(), f"INSERT INTO {table} VALUES (1), (2)", mode="write")
    assert isinstance(ok, SqlResult) and ok.rows_affected == 2 and ok.committed and ok.command == "INSERT 0 2"
    failed = await run_sql(pools, pg.target(), f"INSERT INTO {table} VALUES (3), (1)", mode="write")
    assert isinstance(failed, Failed) and failed.error.kind == "constraint" and failed.error.sqlstate == "23505"
    assert "already exists" in (failed.error.detail or "")
    assert await pg.scalar(f"SELECT array_agg(id ORDER BY id) FROM {table}") == [1, 2]  # 3 rolled back


async def test_errors_are_typed(pg: Postgres, pools: Pools) -> None:
    syntax = await run_sql(pools, pg.target(), "SELECT * FROM", mode="read")
    assert isinstance(syntax, Failed) and syntax.error.kind == "syntax" and syntax.error.position == 14
    missing = await run_sql(pools, pg.target(), "SELECT * FROM no_such_table", mode="read")
    assert isinstance(missing, Failed) and missing.error.kind == "undefined" and missing.error.position == 15
    read_only = await run_sql(pools, pg.target(), f"CREATE TABLE {unique()} (a int)", mode="read")
    assert isinstance(read_only, Failed) and read_only.error.kind == "read_only" and read_only.error.sqlstate == "25006"
    division = await run_sql(pools, pg.target(), "SELECT 1 / 0", mode="read")
    assert isinstance(division, Failed) and division.error.kind == "data"


async def test_a_statement_waiting_for_a_lock_gives_up(pg: Postgres, pools: Pools) -> None:
    table = unique()
    await pg.run(f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (1)")
    async with await pg.connect() as holder:
        await holder.execute(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE".encode())
        result = await run_sql(pools, pg.target(), f"UPDATE {table} SET id = 2 WHERE id = 1", mode="write")
        await holder.execute(b"ROLLBACK")
    assert isinstance(result, Failed) and result.error.kind == "lock_timeout" and result.error.sqlstate == "55P03"
    assert await pg.scalar(f"SELECT id FROM {table}") == 1


async def test_unparseable_text_is_refused_at_write_and_left_to_postgres_at_read(pg: Postgres, pools: Pools) -> None:
    at_write = await run_sql(pools, pg.target(), "DELET FROM x", mode="write")
    assert isinstance(at_write, Refused) and at_write.reason == "unparseable"
    assert at_write.parse_error is not None and at_write.parse_error.position == 1
    at_read = await run_sql(pools, pg.target(), "DELET FROM x", mode="read")
    assert isinstance(at_read, Failed) and at_read.error.kind == "syntax" and at_read.statement is None


async def test_nothing_is_sent_for_text_that_cannot_be_a_statement(pg: Postgres, pools: Pools) -> None:
    for query, parameters, reason in (
        ("-- only a comment", [], "empty"),
        ("SELECT 1\x00; DROP TABLE x", [], "nul_character"),
        ("SELECT $1", ["a\x00b"], "nul_character"),
        ("SELECT 1; SELECT 2; SELECT 3", [], "multiple_statements"),
    ):
        outcome = await run_sql(pools, pg.target(), query, parameters, mode="write")
        assert isinstance(outcome, Refused) and outcome.reason == reason, (query, outcome)
    assert outcome.statement_count == 3
    assert pools.keys() == []  # refused before any connection was opened


# The attacker at read: each statement, with the classifier and without it. ``words`` is what the
# classifier answers (a refusal reason) or None when it lets the statement through to PostgreSQL;
# ``server`` is PostgreSQL's answer when the statement reaches it (an error kind, or "ok" when it runs
# harmlessly and is rolled back).
ATTACKS = [
    ("COMMIT; DROP TABLE {t}", "multiple_statements", "syntax"),
    ("SET TRANSACTION READ WRITE", "session_control", "transaction_state"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "session_control", "ok"),
    ("SELECT set_config('default_transaction_read_only', 'off', false)", None, "ok"),
    ("SELECT set_config('transaction_read_only', 'off', true)", None, "transaction_state"),
    ("CREATE TEMP TABLE stash (a int)", None, "read_only"),
    ("SELECT nextval('{t}_seq')", None, "read_only"),
    ("COPY {t} TO PROGRAM 'id'", "copy_program", "permission"),
    ("COPY {t} FROM '/etc/passwd'", "copy_file", "permission"),
    ("WITH d AS (DELETE FROM {t} RETURNING *) SELECT * FROM d", None, "read_only"),
    ("DO $$BEGIN DELETE FROM {t}; END$$", None, "read_only"),
    ("UPDATE {t} SET secret = 'gone' WHERE id = 1", None, "read_only"),
    ("COMMIT", "transaction_control", "ok"),
    ("ALTER ROLE CURRENT_USER PASSWORD 'taken'", "role_management", "read_only"),
]


@pytest.mark.parametrize(("sql", "words", "server"), ATTACKS)
@pytest.mark.parametrize("classifier", [True, False], ids=["classified", "bypassed"])
async def test_read_cannot_be_escaped(
    pg: Postgres, pools: Pools, victim: str, sql: str, words: str | None, server: str, classifier: bool
) -> None:
    before = await _state(pg, victim)
    query = sql.format(t=victim)
    outcome = await run_sql(pools, pg.target(), query, mode="read", classify_first=classifier)
    if classifier and words is not None:
        assert isinstance(outcome, Refused) and outcome.reason == words
    elif server == "ok":
        assert isinstance(outcome, SqlResult) and not outcome.committed
    else:
        assert isinstance(outcome, Failed) and outcome.error.kind == server, outcome
    # Nothing changed, and the next call on the same pool is still read-only.
    assert await _state(pg, victim) == before
    after = await run_sql(pools, pg.target(), f"DELETE FROM {victim} WHERE id = 1", mode="read")
    assert isinstance(after, Failed) and after.error.kind == "read_only"


async def test_a_sleep_ends_at_the_statement_timeout(pg: Postgres, victim: str) -> None:
    pools = Pools(PostgresOptions(statement_timeout_ms=200))
    try:
        for classifier in (True, False):
            outcome = await run_sql(pools, pg.target(), "SELECT pg_sleep(600)", mode="read", classify_first=classifier)
            assert isinstance(outcome, Failed) and outcome.error.kind == "timeout" and outcome.error.sqlstate == "57014"
    finally:
        await pools.aclose()


async def test_a_cancelled_call_stops_its_statement(pg: Postgres) -> None:
    """The MCP call is cancelled mid-statement: the server stops it too (not at its 30 s timeout)."""
    pools = Pools(PostgresOptions(statement_timeout_ms=60_000))
    marker = unique("sleep")
    running = (
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE state = 'active' AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
    )
    try:
        call = asyncio.ensure_future(run_sql(pools, pg.target(), f"SELECT pg_sleep(60) AS {marker}", mode="read"))
        for _ in range(200):
            if await pg.scalar(running) == 1:
                break
            await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(200):  # up to 10 s, well before the statement's own end
            if await pg.scalar(running) == 0:
                break
            await asyncio.sleep(0.05)
        assert await pg.scalar(running) == 0
        assert isinstance(await run_sql(pools, pg.target(), "SELECT 1", mode="read"), SqlResult)
    finally:
        await pools.aclose()


async def test_session_state_does_not_outlive_a_call(pg: Postgres, pools: Pools) -> None:
    """An advisory lock taken at read, a setting changed at write: the next call starts clean."""
    locked = await run_sql(pools, pg.target(), "SELECT pg_advisory_lock(4242)", mode="read")
    assert isinstance(locked, SqlResult)
    assert await pg.scalar("SELECT pg_try_advisory_lock(4242)") is True  # released (DISCARD ALL)
    changed = await run_sql(pools, pg.target(), "SELECT set_config('search_path', 'nowhere', false)", mode="write")
    assert isinstance(changed, SqlResult) and changed.committed
    path = await run_sql(pools, pg.target(), "SELECT current_setting('search_path')", mode="read")
    assert isinstance(path, SqlResult) and path.rows == (('"$user", public',),)


async def test_destructive_statements_wait_for_confirmation(pg: Postgres, pools: Pools, victim: str) -> None:
    for sql in (
        f"DELETE FROM {victim}",
        f"DROP TABLE {victim}",
        f"TRUNCATE {victim}",
        f"ALTER TABLE {victim} DROP COLUMN secret",
    ):
        outcome = await run_sql(pools, pg.target(), sql, mode="write")
        assert isinstance(outcome, NeedsConfirmation) and outcome.reasons, sql
    assert await pg.scalar(f"SELECT count(*) FROM {victim}") == 2
    confirmed = await run_sql(pools, pg.target(), f"DELETE FROM {victim}", mode="write", allow_destructive=True)
    assert isinstance(confirmed, SqlResult) and confirmed.rows_affected == 2 and confirmed.committed
    assert await pg.scalar(f"SELECT count(*) FROM {victim}") == 0


async def test_refused_forms_are_refused_at_write_too(pg: Postgres, pools: Pools, victim: str) -> None:
    for sql, reason in (
        ("COMMIT", "transaction_control"),
        (f"COPY {victim} TO STDOUT", "copy_client"),
        ("SET ROLE x", "session_control"),
    ):
        outcome = await run_sql(pools, pg.target(), sql, mode="write", allow_destructive=True)
        assert isinstance(outcome, Refused) and outcome.reason == reason


# --- pools ------------------------------------------------------------------------------------------


async def _backend_pid(pools: Pools, target) -> int:
    result = await run_sql(pools, target, "SELECT pg_backend_pid()", mode="read")
    assert isinstance(result, SqlResult)
    value = result.rows[0][0]
    assert isinstance(value, int)
    return value


async def test_pools_are_per_principal_and_reused(pg: Postgres, pools: Pools) -> None:
    alice, bob = pg.target(principal="user:alice"), pg.target(principal="user:bob")
    first = await _backend_pid(pools, alice)
    assert await _backend_pid(pools, alice) == first  # the same pooled connection
    assert await _backend_pid(pools, bob) != first
    assert sorted(pools.keys()) == [("user:alice", "database", 1), ("user:bob", "database", 1)]
    assert await pools.close_instance("database", 1) == 2 and pools.keys() == []


async def test_idle_pools_are_closed(pg: Postgres) -> None:
    now = [1000.0]
    pools = Pools(PostgresOptions(pool_idle_seconds=300), clock=lambda: now[0])
    try:
        pid = await _backend_pid(pools, pg.target())
        now[0] += 299
        assert await pools.close_idle() == 0
        now[0] += 2
        assert await pools.close_idle() == 1 and pools.keys() == []
        assert await pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pid) == 0
    finally:
        await pools.aclose()


async def test_a_new_password_gets_a_new_pool(pg: Postgres, pools: Pools) -> None:
    from pydantic import SecretStr

    stale = pg.target(password=SecretStr("not-the-password"))
    outcome = await run_sql(pools, stale, "SELECT 1", mode="read")
    assert isinstance(outcome, Unavailable) and outcome.failure.kind == "auth_failed"
    assert pools.keys() == []  # the failed pool is gone: nothing retries in the background
    assert isinstance(await run_sql(pools, pg.target(), "SELECT 1", mode="read"), SqlResult)


# --- check_connection and connection failures ------------------------------------------------------------


async def test_check_connection_reports_each_step(pg: Postgres) -> None:
    report = await check_connection(pg.target(), FAST)
    assert report.failure is None and report.authenticated
    assert report.tcp_ms is not None and report.session_ms is not None and report.round_trip_ms is not None
    assert report.server_version is not None and report.server_version.split(".")[0] == pg.version.split(".")[0]
    assert report.tls is None  # the sandbox's engine speaks plain TCP; sslmode=prefer accepts that


async def test_connection_failures_are_diagnosed(pg: Postgres) -> None:
    from pydantic import SecretStr

    cases = []
    with closed_port() as port:
        cases.append(("refused", pg.target(port=port), FAST))
        with silent_listener() as silent, blackhole() as dropped:
            cases += [
                ("timeout", pg.target(port=silent), FAST),
                ("unreachable", pg.target(port=dropped), FAST),
                ("auth_failed", pg.target(password=SecretStr("wrong-password-123")), FAST),
                ("rejected", pg.target(database="no_such_db"), FAST),
                ("tls_failed", pg.target(), PostgresOptions(sslmode="require", connect_timeout_seconds=2)),
            ]
            for expected, target, options in cases:
                report = await check_connection(target, options)
                assert report.failure is not None and report.failure.kind == expected, (expected, report)
                pools = Pools(options)
                try:
                    outcome = await run_sql(pools, target, "SELECT 1", mode="read")
                finally:
                    await pools.aclose()
                assert isinstance(outcome, Unavailable) and outcome.failure.kind == expected, (expected, outcome)


# --- the password ------------------------------------------------------------------------------------------


async def test_the_password_appears_nowhere(pg: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    for name in (None, "psycopg", "psycopg.pool", "redu_mcp"):
        caplog.set_level(logging.DEBUG, logger=name)
    pools = Pools(FAST)
    seen: list[object] = [pg.target(), pools]
    try:
        seen.append(await run_sql(pools, pg.target(), "SELECT 1", mode="read"))
        # A statement that makes PostgreSQL quote the password back.
        echoed = await run_sql(pools, pg.target(), f"SELECT '{PASSWORD}'::int", mode="read")
        assert isinstance(echoed, Failed) and "[redacted]" in echoed.error.message
        seen.append(echoed.error)  # (its statement is the caller's own text, which holds the password)
        for wrong in ("wrong-" + PASSWORD, PASSWORD + "x"):
            from pydantic import SecretStr

            stale = pg.target(password=SecretStr(wrong), instance_id=2)
            seen += [await run_sql(pools, stale, "SELECT 1", mode="read"), await check_connection(stale, FAST)]
        seen.append(await check_connection(pg.target(), FAST))
    finally:
        await pools.aclose()
    text = caplog.text + "".join(repr(item) + str(item) for item in seen)
    assert "psycopg" in caplog.text  # the drivers' own loggers were captured
    where = text.find(PASSWORD)
    assert where == -1, text[max(0, where - 300) : where + 100]
