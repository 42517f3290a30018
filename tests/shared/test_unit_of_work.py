"""shared.unit_of_work: a write's events are stored with its rows, and the relay is told after
the commit, never before it nor for a write that stored none."""

import pytest

from shared.events import TicketClosed
from shared.logging import bind_correlation_id
from shared.unit_of_work import unit_of_work, wake_after_commit


def closed_event(number: int) -> TicketClosed:
    return TicketClosed(number=number, client_number="100001", closed_by="client")


@pytest.fixture
def wakes(pool):
    """The wake-ups of the pool's relay."""
    seen: list[bool] = []

    def wake() -> None:
        seen.append(True)

    wake_after_commit(pool, wake)
    yield seen
    wake_after_commit(pool, None)


async def test_the_events_of_a_commit_are_stored_with_their_correlation_id(pool, wakes):
    bind_correlation_id("req-42")
    async with unit_of_work(pool) as work:
        await work.conn.execute("SELECT 1")
        first = work.add_event(closed_event(1), aggregate="ticket:1")
        second = work.add_event(closed_event(2), aggregate="ticket:2")
        # Nothing is stored before the commit is near, and nobody is woken yet.
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
        assert wakes == []
    rows = await pool.fetch(
        "SELECT event_id, routing_key, aggregate, payload->>'type' AS type, correlation_id"
        " FROM outbox ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        (first.id, "tickets.ticket.closed", "ticket:1", "tickets.ticket.closed", "req-42"),
        (second.id, "tickets.ticket.closed", "ticket:2", "tickets.ticket.closed", "req-42"),
    ]
    assert len(wakes) == 1


async def test_a_failed_write_stores_no_event_and_wakes_nobody(pool, wakes):
    with pytest.raises(RuntimeError):
        async with unit_of_work(pool) as work:
            work.add_event(closed_event(1), aggregate="ticket:1")
            raise RuntimeError("the rule refused")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert wakes == []


async def test_a_write_without_events_wakes_nobody(pool, wakes):
    async with unit_of_work(pool) as work:
        await work.conn.execute("SELECT 1")
    assert wakes == []
