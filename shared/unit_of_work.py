"""The one shape of every write: a transaction that may add events to the outbox.

    async with unit_of_work(pool) as work:
        row = await store.lock_something(work.conn, ...)      # the row locked
        status = rules.next_status(row["status"], ...)       # the pure rule applied
        await store.write_something(work.conn, ...)          # the rows written
        work.add_event(events.SomethingHappened(...), aggregate="thing:42")

The events are stored in the same transaction as the rows (the transactional outbox), through
`outbox.store_events`, the one place that inserts outbox rows. Once the transaction has
committed, the outbox relay of the pool's database is told (`wake_after_commit`), so that it
publishes now rather than at its next poll. Neither the HTTP layer nor the inbound SMTP handler
need to know about the outbox: they only run writes.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from shared.db import acquire
from shared.events import Envelope, EventData
from shared.outbox import PendingEvent, store_events


class UnitOfWork:
    """The connection of one transaction, and the events it adds."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.events: list[PendingEvent] = []

    def add_event(self, data: EventData, *, aggregate: str) -> Envelope:
        """Store `data`'s event with this transaction; `aggregate` keeps the order of the events
        of one thing (`ticket:42`) as they are published."""
        envelope = Envelope.wrap(data)
        self.events.append(PendingEvent(envelope, aggregate))
        return envelope


# The callback telling each pool's outbox relay that events have committed, registered by the
# relay's cleanup context (shared.resources.outbox_relay). A pool without one (a command-line
# tool, a test) leaves its events to the relay's poll.
_WAKE: dict[asyncpg.Pool, Callable[[], None]] = {}


def wake_after_commit(pool: asyncpg.Pool, wake: Callable[[], None] | None) -> None:
    """Call `wake()` after each commit of `pool` that stored events (None: stop)."""
    if wake is None:
        _WAKE.pop(pool, None)
    else:
        _WAKE[pool] = wake


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, timeout: float = 3.0) -> AsyncIterator[UnitOfWork]:
    """One connection, one transaction, committed when the block ends without an exception;
    503 quickly when the database cannot give a connection (`shared.db.acquire`)."""
    async with acquire(pool, timeout) as conn:
        async with conn.transaction():
            work = UnitOfWork(conn)
            yield work
            if work.events:
                await store_events(conn, work.events)
        if work.events and (wake := _WAKE.get(pool)) is not None:
            wake()
