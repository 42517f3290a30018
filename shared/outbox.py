"""The transactional outbox: `add_event` in the caller's transaction, `OutboxRelay` publishes.

The relay takes a batch of unsent rows with `FOR UPDATE SKIP LOCKED` (so several instances can
relay at once), publishes them with publisher confirms (a wave at a time, at most one event per
aggregate in a wave) and marks a row sent only after the broker confirmed it. A row whose
aggregate has an earlier unsent row held by another relay is left for a later round, which keeps
per-aggregate order. It wakes on NOTIFY and polls as a fallback, since a notification is only a
wake-up and can be missed (for instance while reconnecting)."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from shared.db import DB_UNAVAILABLE_ERRORS
from shared.events import Envelope, EventData
from shared.logging import current_correlation_id

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "helpdesk_outbox"


async def add_event(conn: asyncpg.Connection, data: EventData, *, aggregate: str) -> Envelope:
    """Store an event in the caller's transaction; the relay publishes it after commit."""
    envelope = Envelope.wrap(data)
    await conn.execute(
        """
        INSERT INTO outbox (event_id, routing_key, aggregate, payload, correlation_id)
        VALUES ($1, $2, $3, $4::jsonb, $5)
        """,
        envelope.id,
        envelope.type,
        aggregate,
        envelope.model_dump_json(),
        current_correlation_id(),
    )
    return envelope


# Lock a batch, then keep only rows with no earlier unsent row of their aggregate outside the
# batch: such a row is being published by another relay, and ours must wait for it.
_CLAIM_BATCH = """
WITH batch AS (
    SELECT id, aggregate FROM outbox
    WHERE sent_at IS NULL
    ORDER BY id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
SELECT o.id, o.event_id, o.routing_key, o.aggregate, o.payload::text AS payload, o.correlation_id
FROM outbox o JOIN batch b ON b.id = o.id
WHERE NOT EXISTS (
    SELECT 1 FROM outbox p
    WHERE p.aggregate = b.aggregate AND p.sent_at IS NULL AND p.id < b.id
      AND p.id NOT IN (SELECT id FROM batch)
)
ORDER BY o.id
"""

_MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"
_BACKLOG = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
_PURGE_SENT = "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)"


async def backlog(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(_BACKLOG)


class OutboxRelay:
    """Background task publishing outbox rows; `publish(routing_key, body, message_id, corr)`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        publish: Callable[[str, bytes, str, str | None], Awaitable[None]],
        *,
        poll_interval: float = 1.0,
        batch_size: int = 100,
        keep_sent_seconds: float = 86_400.0,
        gather_seconds: float = 0.005,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._publish = publish
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._keep_sent = keep_sent_seconds
        self._gather = gather_seconds
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.published = 0

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="outbox-listen"),
            asyncio.create_task(self._run(), name="outbox-relay"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        self._wake.set()

    async def _listen_forever(self) -> None:
        def on_notify(*_: object) -> None:
            self._wake.set()

        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                await conn.add_listener(NOTIFY_CHANNEL, on_notify)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda *_, done=closed: done.set())
                self._wake.set()  # events may have arrived while we were not listening
                await closed.wait()
            except DB_UNAVAILABLE_ERRORS as exc:
                log.warning("outbox.listen_failed", error=str(exc))
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close(timeout=2)
            await asyncio.sleep(self._poll_interval)

    async def _run(self) -> None:
        delay = self._poll_interval
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while True:
            # Cleared before the round, not after: a NOTIFY arriving while a round runs must
            # start another round, not be forgotten until the next poll.
            self._wake.clear()
            try:
                sent = await self.relay_once()
                delay = self._poll_interval
                if loop.time() - last_purge > 600:
                    await self._purge()
                    last_purge = loop.time()
                if sent:
                    continue  # more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: rows stay unsent, try later
                log.warning("outbox.relay_failed", error=repr(exc))
                delay = min(delay * 2, 10.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            if self._wake.is_set() and self._gather > 0:
                # Every commit notifies, and every relay (one per instance) wakes: a short pause
                # lets a burst of commits make one round of each relay, not one per commit.
                await asyncio.sleep(self._gather)

    async def relay_once(self) -> int:
        """Publish one batch; returns how many events were published and marked sent."""
        failure: BaseException | None = None
        done: list[int] = []
        async with self._pool.acquire(timeout=5) as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM_BATCH, self._batch_size)
            # Published in waves holding at most one event per aggregate: a wave is published
            # at once and its confirms awaited together (one round trip, not one per event);
            # the next wave only after every confirm of this one, and none after a failure, so
            # an aggregate's events still reach the broker one after the other, in order.
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
                await conn.execute(_MARK_SENT, done)
        if failure is not None:
            raise failure
        self.published += len(done)
        return len(done)

    async def _purge(self) -> None:
        async with self._pool.acquire(timeout=5) as conn:
            await conn.execute(_PURGE_SENT, self._keep_sent)
