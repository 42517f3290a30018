"""Auto-close (SPEC 9.2): the rule without I/O, then two tickets instances sharing one database,
with the period set to seconds, closing each due ticket exactly once."""

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.tickets import auto_close
from services.tickets.app import MIGRATIONS
from shared import db
from shared.resources import POOL
from tests.support import stack
from tests.support.infra import DatabaseFactory
from tests.support.waiting import wait_for
from tests.tickets.conftest import CLIENT_EVENTS, Desk, purge_queue

CLOSED = "tickets.ticket.closed"
# TICKETS_AUTO_CLOSE_DAYS of two seconds: long enough for a client to answer an operator first.
PERIOD = 2 / 86400
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)

# --- the rule ----------------------------------------------------------------------------------


def test_zero_days_turns_auto_close_off():
    assert auto_close.period(0) is None
    assert auto_close.period(7) == WEEK
    assert auto_close.period(2 / 86400) == timedelta(seconds=2)


def test_an_answered_ticket_is_due_once_the_period_has_passed_since_the_operator_reply():
    def due(last_reply):
        return auto_close.is_due(
            status="answered", last_operator_reply_at=last_reply, now=NOW, after=WEEK
        )

    assert due(NOW - WEEK)
    assert due(NOW - timedelta(days=30))
    assert not due(NOW - WEEK + timedelta(seconds=1))
    assert not due(NOW)
    assert not due(None)


@pytest.mark.parametrize("status", ["open", "customer_reply", "closed"])
def test_a_ticket_that_is_not_answered_is_never_due(status):
    long_ago = NOW - timedelta(days=365)
    assert not auto_close.is_due(
        status=status, last_operator_reply_at=long_ago, now=NOW, after=WEEK
    )


# --- two instances on one database -------------------------------------------------------------


async def _start(tickets_db: str, amqp_url: str, auth: TestClient, **overrides) -> TestClient:
    return await stack.start_tickets(tickets_db, amqp_url, str(auth.make_url("/")), **overrides)


@pytest.fixture
async def instances(
    auth: TestClient, tickets_db: str, amqp_url: str
) -> AsyncIterator[list[TestClient]]:
    """Two tickets apps, each with its own pool, both running the auto-close task."""
    await purge_queue(amqp_url, CLIENT_EVENTS)
    settings = {"auto_close_days": PERIOD, "auto_close_interval_seconds": 0.1}
    before = _auto_close_tasks()
    started = [await _start(tickets_db, amqp_url, auth, **settings) for _ in range(2)]
    # The tasks these two started (other tests' apps may share the session's event loop).
    AUTO_CLOSE_TASKS[:] = [t for t in _auto_close_tasks() if t not in before]
    yield started
    for client in started:
        await client.close()


@pytest.fixture
async def two_desks(auth: TestClient, instances: list[TestClient]) -> Desk:
    desk = Desk(auth, instances[0])
    await desk.sign_in_staff()
    return desk


AUTO_CLOSE_TASKS: list[asyncio.Task] = []


def _auto_close_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "ticket-auto-close"]


async def _answered(desk: Desk, client: dict) -> int:
    number = (await desk.open(client, allow_duplicate=True))["number"]
    await desk.reply(number, desk.operator, "Ya está resuelto.", expect=201)
    return number


def _closed(event_tap) -> list[dict]:
    return [body["data"] for body in event_tap.bodies(CLOSED)]


async def _wait_closed(event_tap, number: int) -> None:
    await wait_for(
        lambda: number in [d["number"] for d in _closed(event_tap)],
        timeout=15,
        message=f"ticket {number} closed",
    )


async def _closed_rows(pool: asyncpg.Pool, number: int) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE routing_key = $1 AND aggregate = $2",
        CLOSED,
        f"ticket:{number}",
    )


async def test_two_instances_close_each_answered_ticket_exactly_once(
    two_desks, instances, event_tap
):
    desk = two_desks
    assert len(AUTO_CLOSE_TASKS) == 2
    client = await desk.new_client()
    numbers = [await _answered(desk, client) for _ in range(6)]
    for number in numbers:
        await _wait_closed(event_tap, number)
    # A ticket answered after those were closed, and closed in turn: both instances have had
    # turns since, and none closed the first ones again.
    sentinel = await _answered(desk, client)
    await _wait_closed(event_tap, sentinel)

    closed = [d for d in _closed(event_tap) if d["number"] in [*numbers, sentinel]]
    assert sorted(d["number"] for d in closed) == sorted([*numbers, sentinel])
    for data in closed:
        assert data["closed_by"] == "system"
        assert data["client_number"] == client["client_number"]
        assert data["subject"] == "Correo electrónico"
        assert data["summary"] == "No puedo enviar correos."
        assert "closed_by_name" not in data
    pool = instances[1].server.app[POOL]
    for number in [*numbers, sentinel]:
        assert await _closed_rows(pool, number) == 1
        _, ticket = await desk.get(number, client["headers"], expect=200)
        assert ticket["status"] == "closed"
        assert [(c["by"], c["name"]) for c in ticket["closures"]] == [("system", None)]
    # The client can reopen it, as after any closing.
    await desk.reopen(numbers[0], client["headers"], expect=200)


async def test_concurrent_runs_on_two_pools_close_each_due_ticket_once(auth, tickets_db, amqp_url):
    # No periodic task here (0 days): only the runs below race, in batches small enough that
    # each run takes several, on two pools as two instances would.
    await purge_queue(amqp_url, CLIENT_EVENTS)
    app = await _start(tickets_db, amqp_url, auth, auto_close_days=0)
    other = await asyncpg.create_pool(tickets_db, min_size=4, max_size=4)
    try:
        desk = Desk(auth, app)
        await desk.sign_in_staff()
        client = await desk.new_client()
        numbers = [await _answered(desk, client) for _ in range(12)]
        pools = [app.server.app[POOL], other]
        await pools[0].execute(
            "UPDATE tickets SET last_operator_reply_at = now() - interval '8 days'"
        )
        closed = await asyncio.gather(
            *(auto_close.close_due_tickets(pool, days=7, batch=2) for pool in pools * 4)
        )
        assert sum(closed) == len(numbers)
        for number in numbers:
            assert await _closed_rows(other, number) == 1
        assert await auto_close.close_due_tickets(other, days=7) == 0
    finally:
        await other.close()
        await app.close()


async def test_a_ticket_the_client_answered_after_the_operator_stays_open(two_desks, event_tap):
    desk = two_desks
    client = await desk.new_client()
    replied = (await desk.open(client, allow_duplicate=True))["number"]
    await desk.reply(replied, desk.operator, "¿Puede probar de nuevo?", expect=201)
    await desk.reply(replied, client["headers"], "Sigue igual.", expect=201)
    never_answered = (await desk.open(client, allow_duplicate=True))["number"]
    # Answered after the client's reply above, so due after that ticket would have been.
    sentinel = await _answered(desk, client)
    await _wait_closed(event_tap, sentinel)

    closed = [d["number"] for d in _closed(event_tap)]
    assert replied not in closed and never_answered not in closed
    _, ticket = await desk.get(replied, client["headers"], expect=200)
    assert ticket["status"] == "customer_reply"
    _, ticket = await desk.get(never_answered, client["headers"], expect=200)
    assert ticket["status"] == "open"


async def test_the_count_starts_again_at_each_operator_reply(auth, tickets_db, amqp_url):
    # A week-long period on a real database: only the reply's time decides.
    await purge_queue(amqp_url, CLIENT_EVENTS)
    app = await _start(tickets_db, amqp_url, auth)
    try:
        desk = Desk(auth, app)
        await desk.sign_in_staff()
        client = await desk.new_client()
        number = await _answered(desk, client)
        pool = app.server.app[POOL]
        week_and_an_hour = timedelta(days=7, hours=1)
        await pool.execute(
            "UPDATE tickets SET last_operator_reply_at = now() - $2::interval WHERE number = $1",
            number,
            week_and_an_hour,
        )
        await desk.reply(number, desk.operator, "Un dato más.", expect=201)
        assert await auto_close.close_due_tickets(pool, days=7) == 0
        await pool.execute(
            "UPDATE tickets SET last_operator_reply_at = now() - $2::interval,"
            " updated_at = now() WHERE number = $1",
            number,
            week_and_an_hour,
        )
        assert await auto_close.close_due_tickets(pool, days=7) == 1
        _, ticket = await desk.get(number, client["headers"], expect=200)
        assert ticket["status"] == "closed"
    finally:
        await app.close()


async def test_zero_days_closes_nothing(auth, tickets_db, amqp_url):
    await purge_queue(amqp_url, CLIENT_EVENTS)
    before = _auto_close_tasks()
    app = await _start(
        tickets_db, amqp_url, auth, auto_close_days=0, auto_close_interval_seconds=0.1
    )
    try:
        assert [t for t in _auto_close_tasks() if t not in before] == []  # none started
        desk = Desk(auth, app)
        await desk.sign_in_staff()
        client = await desk.new_client()
        number = await _answered(desk, client)
        pool = app.server.app[POOL]
        await pool.execute(
            "UPDATE tickets SET last_operator_reply_at = now() - interval '365 days'"
            " WHERE number = $1",
            number,
        )
        assert await auto_close.close_due_tickets(pool, days=0) == 0
        _, ticket = await desk.get(number, client["headers"], expect=200)
        assert ticket["status"] == "answered"
        assert await _closed_rows(pool, number) == 0
    finally:
        await app.close()


# --- the migration's back-fill -----------------------------------------------------------------


async def test_the_migration_back_fills_the_last_operator_reply(
    databases: DatabaseFactory, tmp_path: Path
):
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for version, path in db.migration_files(MIGRATIONS):
        if version < 9:
            shutil.copy(path, earlier / path.name)
    dsn = await databases.empty("tickets")
    await db.migrate(dsn, "tickets", earlier)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO tickets (number, client_number, service_id, service_name, category_id,
                                 subject, status, excerpt)
            SELECT n, '100001', 1, 'Hosting', 1, 'Correo electrónico', 'answered', 'x'
            FROM generate_series(1, 2) n;
            INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body,
                                  channel, created_at)
            VALUES (1, 'client', 'client:100001', 'Ana', 'Hola', 'api', '2026-01-01T10:00Z'),
                   (1, 'operator', 'operator:1', 'Oscar', 'Uno', 'api', '2026-01-02T10:00Z'),
                   (1, 'operator', 'operator:1', 'Oscar', 'Dos', 'api', '2026-01-03T10:00Z'),
                   (1, 'client', 'client:100001', 'Ana', 'Gracias', 'api', '2026-01-04T10:00Z'),
                   (2, 'client', 'client:100001', 'Ana', 'Hola', 'api', '2026-01-01T10:00Z');
            """
        )
        await db.migrate(dsn, "tickets", MIGRATIONS)
        rows = await conn.fetch("SELECT number, last_operator_reply_at FROM tickets ORDER BY 1")
        assert [r["last_operator_reply_at"] for r in rows] == [
            datetime(2026, 1, 3, 10, tzinfo=UTC),
            None,
        ]
    finally:
        await conn.close()
