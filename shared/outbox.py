"""The transactional outbox: `store_events` in the caller's transaction (through
`shared.unit_of_work`), `OutboxRelay` publishes.

One relay per database publishes at a time: the one holding a session advisory lock on its own
connection. The relays of the other instances wait for that lock inside PostgreSQL (which costs
them nothing) and the first in line takes over as soon as the holder's connection ends (a crash,
a stop, a network cut). A single publisher keeps per-aggregate order without row locks, and it
needs two statements per batch on a connection of its own: read the oldest unsent rows, then mark
sent what the broker confirmed. Several relays sharing the work would cost each instance a round
per commit for a share of the events.

Rows are published in waves holding at most one event per aggregate, each wave's confirms awaited
together, and a row is marked sent only after the broker confirmed it; after a crash between the
two, the next leader publishes it again (consumers are idempotent). The leader also polls, since
a wake-up can be missed.

The wake-up comes after the commit, not from it: `shared.unit_of_work` calls `committed()` once
a transaction that stored events has committed. The leading relay then starts a round at once; a
relay that is not leading sends `NOTIFY` to the leader, in a statement of its own. A trigger
sending the NOTIFY inside the writing transaction would be simpler, but PostgreSQL serialises the
commits of transactions that NOTIFY (a lock for the whole cluster, held until the commit is
flushed), so no two of them share a flush: it held the write path to a fraction of its rate. A
statement that only notifies writes nothing, flushes nothing, and holds that lock for an instant.
The leader listens only once it has caught up: while it works through full batches a notice is
waste (it cost each commit a transaction in the listening session)."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog
from aiohttp import web

from shared.db import DB_UNAVAILABLE_ERRORS
from shared.events import Envelope
from shared.logging import current_correlation_id
from shared.retry import Backoff

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "helpdesk_outbox"


@dataclass(frozen=True)
class PendingEvent:
    """An event about to be stored, with the aggregate whose order it keeps."""

    envelope: Envelope
    aggregate: str


# The one INSERT of outbox rows (bench/stack_floor.py runs it too).
INSERT_EVENT = """
INSERT INTO outbox (event_id, routing_key, aggregate, payload, correlation_id)
VALUES ($1, $2, $3, $4::jsonb, $5)
"""


async def store_events(conn: asyncpg.Connection, pending: Sequence[PendingEvent]) -> None:
    """The one place that inserts outbox rows: `events` in the caller's transaction (all in one
    round trip), each with the correlation id of the work that caused it, since the relay runs
    in another task and cannot read it. Called by `shared.unit_of_work`."""
    correlation_id = current_correlation_id()
    await conn.executemany(
        INSERT_EVENT,
        [
            (
                p.envelope.id,
                p.envelope.type,
                p.aggregate,
                p.envelope.model_dump_json(),
                correlation_id,
            )
            for p in pending
        ],
    )


# Held by the publishing relay for as long as its connection lives (any constant would do; this
# one reads "outbox" in ASCII).
RELAY_LOCK = 0x6F7574626F78
# The leader's statements have a limit (the lock wait has none): a statement hung on a half-dead
# connection ends the lead, and the relay connects again, instead of stalling every event.
STATEMENT_TIMEOUT = 10.0
# The session of a relay's own connection.
# A relay cut off without a goodbye (a half-open connection) would keep the lock until the
# server's TCP notices, two hours by default, and no event of the database would be published
# meanwhile. So the server probes a silent peer, and ends a session idle for 60 s: the leader
# runs a statement at least every 10 s, and the relays waiting for the lock are not idle.
# The read of the unsent rows must be a plain index scan of `outbox_unsent`: that index keeps an
# entry for every row sent since the table was last vacuumed (thousands under load), and an
# index scan marks those entries dead as it passes them, so the next read skips them. The
# planner, expecting few unsent rows, preferred a bitmap scan, which marks nothing and visits
# every such row's heap page on every read, many times slower once thousands of rows were sent,
# and a relay makes a round per commit when it is not busy.
RELAY_SESSION = {
    "idle_session_timeout": "60s",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "enable_bitmapscan": "off",
}

NEXT_BATCH = """
SELECT id, event_id, routing_key, aggregate, payload::text AS payload, correlation_id
FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1
"""
_MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"
_BACKLOG = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
_NOTIFY = "SELECT pg_notify($1, '')"
# In batches, so that no one statement runs long; through the outbox_sent_at index.
_PURGE_SENT = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2
)
"""
PURGE_BATCH = 5_000


async def backlog(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(_BACKLOG)


class OutboxRelay:
    """Background task publishing outbox rows; `publish(routing_key, body, message_id, corr)`."""

    def __init__(
        self,
        dsn: str,
        publish: Callable[[str, bytes, str, str | None], Awaitable[None]],
        *,
        poll_interval: float = 1.0,
        batch_size: int = 100,
        keep_sent_seconds: float = 86_400.0,
        notify_pool: asyncpg.Pool | None = None,
    ) -> None:
        self._dsn = dsn
        self._notify_pool = notify_pool  # for the NOTIFY of a relay that is not leading
        self._notify_wanted = False
        self._notifying: asyncio.Task | None = None
        self._publish = publish
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._keep_sent = keep_sent_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.published = 0
        self.leading = asyncio.Event()  # set while this relay holds the lock

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        for task in (self._task, self._notifying):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def wake(self) -> None:
        self._wake.set()

    def committed(self) -> None:
        """A transaction that stored events has committed: the leader publishes them now. This
        relay starts a round if it leads; otherwise it notifies the leader (one NOTIFY at a time,
        the commits made meanwhile sharing the next)."""
        if self.leading.is_set():
            self._wake.set()
        elif self._notify_pool is not None:
            self._notify_wanted = True
            if self._notifying is None or self._notifying.done():
                self._notifying = asyncio.create_task(self._notify(), name="outbox-notify")

    async def _notify(self) -> None:
        assert self._notify_pool is not None
        while self._notify_wanted:
            self._notify_wanted = False
            try:
                await self._notify_pool.execute(_NOTIFY, NOTIFY_CHANNEL, timeout=STATEMENT_TIMEOUT)
            except Exception as exc:  # the database away: the leader's poll finds the rows
                log.warning("outbox.notify_failed", error=repr(exc))
                return

    async def purge_sent(self, pool: asyncpg.Pool) -> int:
        """Delete the rows sent more than `keep_sent_seconds` ago, in batches, through the pool:
        a chore apart from the publishing rounds, which it never holds up (`resources` runs it
        every few minutes). Only the leading relay's instance does it. The count deleted."""
        if not self.leading.is_set():
            return 0
        total = 0
        while True:
            result = await pool.execute(_PURGE_SENT, self._keep_sent, PURGE_BATCH)
            deleted = int(result.split()[-1])
            total += deleted
            if deleted < PURGE_BATCH:
                return total

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5, server_settings=RELAY_SESSION)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda *_, done=closed: done.set())
                # Waits, in the server, until no other relay of this database holds the lock.
                await conn.execute("SELECT pg_advisory_lock($1)", RELAY_LOCK)
                self.leading.set()
                log.info("outbox.relay_leading")
                await self._lead(conn, closed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: another relay may lead meanwhile
                log.warning("outbox.relay_connection_lost", error=repr(exc))
            finally:
                self.leading.clear()
                if conn is not None:
                    await _close(conn)
            await asyncio.sleep(self._poll_interval)

    async def _lead(self, conn: asyncpg.Connection, closed: asyncio.Event) -> None:
        """Publish until the connection is lost (a database error is raised and `_run` connects
        again); a broker failure only makes the next rounds wait longer."""
        backoff = Backoff(first=self._poll_interval, ceiling=max(self._poll_interval, 10.0))
        pauses = backoff.pauses()
        wait = self._poll_interval
        listening = False

        def wake(*_: object) -> None:
            self._wake.set()

        while not closed.is_set():
            # Cleared before the round, not after: a NOTIFY arriving while a round runs must
            # start another round, not be forgotten until the next poll.
            self._wake.clear()
            more, failure = await self._relay_batch(conn)
            if failure is None:
                pauses, wait = backoff.pauses(), self._poll_interval
            else:  # the broker away: rows stay unsent, try again later
                wait = next(pauses)
                log.warning("outbox.relay_failed", error=repr(failure), retry_in=wait)
            if more:
                # Busy: the next round starts now anyway, so a notice of every commit would
                # only cost this database a signal and a message, and us a packet, per commit.
                if listening:
                    await conn.remove_listener(NOTIFY_CHANNEL, wake)
                    listening = False
                continue
            if not listening:
                # LISTEN, then one more round: a commit made between the last read and LISTEN
                # sent its notice to nobody.
                await conn.add_listener(NOTIFY_CHANNEL, wake)
                listening = True
                continue
            # No pause to gather commits into a round: under load, the commits made while a
            # round awaits its confirms make the next round; a pause only delays every event.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _relay_batch(self, conn: asyncpg.Connection) -> tuple[bool, BaseException | None]:
        """Publish one batch: (it was full, so more may be waiting; the first publish failure).
        A database error is raised: the connection, and the lead with it, may be gone."""
        failure: BaseException | None = None
        done: list[int] = []
        rows = await conn.fetch(NEXT_BATCH, self._batch_size, timeout=STATEMENT_TIMEOUT)
        # Published in waves holding at most one event per aggregate: a wave is published at once
        # and its confirms awaited together (one round trip, not one per event); the next wave
        # only after every confirm of this one, and none after a failure, so an aggregate's
        # events still reach the broker one after the other, in order.
        waiting = list(rows)
        while waiting and failure is None:
            wave, later, seen = [], [], set()
            for row in waiting:
                (later if row["aggregate"] in seen else wave).append(row)
                seen.add(row["aggregate"])
            waiting = later
            results = await asyncio.gather(
                *(
                    self._publish(
                        row["routing_key"],
                        row["payload"].encode(),
                        str(row["event_id"]),
                        row["correlation_id"],
                    )
                    for row in wave
                ),
                return_exceptions=True,
            )
            for row, result in zip(wave, results, strict=True):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if isinstance(result, BaseException):
                    failure = failure or result
                else:
                    done.append(row["id"])
        # What the broker confirmed is marked sent even when another publish failed.
        if done:
            await conn.execute(_MARK_SENT, done, timeout=STATEMENT_TIMEOUT)
            self.published += len(done)
        return failure is None and len(rows) == self._batch_size, failure


RELAY = web.AppKey("outbox_relay", OutboxRelay)


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), timeout=2)
    except (TimeoutError, *DB_UNAVAILABLE_ERRORS, asyncpg.PostgresError):
        conn.terminate()
