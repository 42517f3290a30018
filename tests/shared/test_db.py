"""shared.db: numbered migrations applied once and in order, and a pool that answers 503
(ServiceUnavailable) quickly instead of hanging when it cannot give a connection."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from deploy.processes import free_port
from shared import db
from shared.errors import ServiceUnavailable
from shared.http import DEPENDENCIES
from shared.resources import POOL, database
from shared.settings import ServiceSettings
from shared.unit_of_work import unit_of_work
from tests.support.infra import DatabaseFactory


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")
    return directory


# 0010 sorts after 0002 and must run after it; each step records that it ran.
STEPS = {
    "0001_create.sql": "CREATE TABLE steps (seq serial PRIMARY KEY, version int NOT NULL);",
    "0002_second.sql": "INSERT INTO steps (version) VALUES (2);",
    "0010_tenth.sql": "INSERT INTO steps (version) VALUES (10);",
}


@pytest.fixture
async def empty_db(databases: DatabaseFactory) -> str:
    return await databases.empty("mig")


@pytest.fixture
async def conn(empty_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(empty_db)
    yield conn
    await conn.close()


async def test_migrations_run_in_number_order_and_are_recorded_per_component(conn, tmp_path):
    directory = write_migrations(tmp_path / "svc", STEPS)

    applied = await db.apply_migrations(
        conn, [("shared", db.SHARED_MIGRATIONS), ("svc", directory)]
    )

    assert applied == [
        "shared/0001_outbox_and_inbox.sql",
        "shared/0002_outbox_one_relay.sql",
        "shared/0003_outbox_wake_after_commit.sql",
        "svc/0001_create.sql",
        "svc/0002_second.sql",
        "svc/0010_tenth.sql",
    ]
    assert [r["version"] for r in await conn.fetch("SELECT version FROM steps ORDER BY seq")] == [
        2,
        10,
    ]
    recorded = await conn.fetch(
        "SELECT component, version, name FROM schema_migrations ORDER BY component, version"
    )
    assert [tuple(r) for r in recorded] == [
        ("shared", 1, "0001_outbox_and_inbox.sql"),
        ("shared", 2, "0002_outbox_one_relay.sql"),
        ("shared", 3, "0003_outbox_wake_after_commit.sql"),
        ("svc", 1, "0001_create.sql"),
        ("svc", 2, "0002_second.sql"),
        ("svc", 10, "0010_tenth.sql"),
    ]


async def test_running_migrations_again_applies_nothing(conn, tmp_path):
    directory = write_migrations(tmp_path / "svc", STEPS)
    components = [("shared", db.SHARED_MIGRATIONS), ("svc", directory)]
    await db.apply_migrations(conn, components)

    assert await db.apply_migrations(conn, components) == []
    assert await conn.fetchval("SELECT count(*) FROM steps") == 2


async def test_a_new_migration_file_is_applied_on_the_next_start(conn, tmp_path):
    directory = write_migrations(tmp_path / "svc", STEPS)
    await db.apply_migrations(conn, [("svc", directory)])
    write_migrations(directory, {"0011_more.sql": "INSERT INTO steps (version) VALUES (11);"})

    assert await db.apply_migrations(conn, [("svc", directory)]) == ["svc/0011_more.sql"]
    assert await conn.fetchval("SELECT max(version) FROM steps") == 11


async def test_two_instances_migrating_one_empty_database_at_once_apply_each_file_once(
    empty_db, tmp_path
):
    directory = write_migrations(tmp_path / "svc", STEPS)
    components = [("shared", db.SHARED_MIGRATIONS), ("svc", directory)]
    first, second = await asyncpg.connect(empty_db), await asyncpg.connect(empty_db)
    try:
        results = await asyncio.gather(
            db.apply_migrations(first, components), db.apply_migrations(second, components)
        )
        counts = await first.fetch(
            "SELECT component, version, count(*) AS n FROM schema_migrations"
            " GROUP BY component, version"
        )
        steps = await first.fetchval("SELECT count(*) FROM steps")
    finally:
        await first.close()
        await second.close()

    assert sorted(results, key=len) == [
        [],
        [
            "shared/0001_outbox_and_inbox.sql",
            "shared/0002_outbox_one_relay.sql",
            "shared/0003_outbox_wake_after_commit.sql",
            "svc/0001_create.sql",
            "svc/0002_second.sql",
            "svc/0010_tenth.sql",
        ],
    ]
    assert len(counts) == 6 and all(r["n"] == 1 for r in counts)
    assert steps == 2


@pytest.mark.parametrize("bad_name", ["1_short.sql", "0001 spaces.sql", "00001_five.sql"])
async def test_a_badly_named_migration_file_is_refused(conn, tmp_path, bad_name):
    directory = write_migrations(tmp_path / "svc", {bad_name: "SELECT 1;"})

    with pytest.raises(ValueError, match=r"0001_name\.sql"):
        await db.apply_migrations(conn, [("svc", directory)])
    # The advisory lock was released: another start can still migrate.
    ok = write_migrations(tmp_path / "ok", {"0001_ok.sql": "SELECT 1;"})
    assert await db.apply_migrations(conn, [("ok", ok)]) == ["ok/0001_ok.sql"]


async def test_two_migrations_with_the_same_number_are_refused(conn, tmp_path):
    directory = write_migrations(tmp_path / "svc", {"0001_a.sql": "", "0001_b.sql": ""})

    with pytest.raises(ValueError, match="duplicate"):
        await db.apply_migrations(conn, [("svc", directory)])


async def test_a_failing_migration_leaves_nothing_half_applied(conn, tmp_path):
    directory = write_migrations(
        tmp_path / "svc",
        {
            "0001_ok.sql": "CREATE TABLE kept (x int);",
            "0002_bad.sql": "CREATE TABLE half (x int); SELECT no_such_function();",
        },
    )

    with pytest.raises(asyncpg.PostgresError):
        await db.apply_migrations(conn, [("svc", directory)])

    assert await conn.fetchval("SELECT to_regclass('half')") is None
    assert await conn.fetchval("SELECT to_regclass('kept')") == "kept"
    versions = await conn.fetch("SELECT version FROM schema_migrations WHERE component = 'svc'")
    assert [r["version"] for r in versions] == [1]


async def test_acquire_and_unit_of_work_answer_503_when_the_pool_is_exhausted(shared_db):
    pool = await db.create_pool(shared_db, min_size=1, max_size=1)
    try:
        async with db.acquire(pool):
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                async with db.acquire(pool, timeout=0.2):
                    pass
            with pytest.raises(ServiceUnavailable):
                async with unit_of_work(pool, timeout=0.2):
                    pass
            assert time.monotonic() - started < 2
        # Once the connection is back, the pool serves again.
        async with unit_of_work(pool) as work:
            assert await work.conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_acquire_answers_503_when_nothing_listens_on_the_database_port():
    pool = await asyncpg.create_pool(
        f"postgresql://postgres@127.0.0.1:{free_port()}/x", min_size=0, max_size=2
    )
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            async with db.acquire(pool, timeout=1.0):
                pass
        with pytest.raises(ServiceUnavailable):
            async with unit_of_work(pool, timeout=1.0):
                pass
        assert time.monotonic() - started < 3
    finally:
        await pool.close()


async def test_acquire_answers_503_in_time_when_the_database_never_answers():
    """A server that accepts the connection and then says nothing (a hung PostgreSQL)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = await asyncpg.create_pool(
        f"postgresql://postgres@127.0.0.1:{port}/x", min_size=0, max_size=2
    )
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            async with unit_of_work(pool, timeout=0.5):
                pass
        assert time.monotonic() - started < 2
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()


async def test_ping_tells_whether_the_database_answers(pool):
    assert await db.ping(pool) is True
    await pool.close()
    assert await db.ping(pool) is False


async def test_a_migration_longer_than_the_pools_statement_limit_is_not_cut_off(empty_db, tmp_path):
    """A service starts with a statement limit for its requests (db_command_timeout); its
    migrations, and its wait for another instance's, run on a connection without it."""
    directory = write_migrations(
        tmp_path / "slow",
        {"0001_slow.sql": "SELECT pg_sleep(1.5); CREATE TABLE slow (id int);"},
    )
    settings = ServiceSettings(database_url=empty_db, db_command_timeout=0.5)
    app = web.Application()
    app[DEPENDENCIES] = []
    context = database(settings, "slow", directory)(app)
    await anext(context)
    try:
        pool = app[POOL]
        assert await pool.fetchval("SELECT count(*) FROM slow") == 0
        # The requests' limit still holds.
        with pytest.raises(TimeoutError):
            await pool.fetchval("SELECT pg_sleep(1)")
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(context)
