"""Auto-close (SPEC 9.2): a ticket `answered` that the client has not answered for
`TICKETS_AUTO_CLOSE_DAYS` is closed by the system, counted from the last operator reply.

A periodic task of every tickets instance (`resources.periodic`). The instances need not agree on
who runs it: each takes the due tickets in small batches with `FOR UPDATE SKIP LOCKED`, so a
ticket one instance is closing is skipped by the others, and one that was closed is no longer
`answered` when another looks. Each batch is one unit of work, so the closing and its
`tickets.ticket.closed` event (through the outbox) are committed together, once per ticket."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
import structlog
from aiohttp import web

from services.tickets import desk, lifecycle, store
from shared.resources import POOL
from shared.unit_of_work import unit_of_work

log = structlog.get_logger(__name__)

# Tickets locked and closed per transaction: short transactions, so a client replying to one of
# them waits little, and a failure redoes little.
BATCH = 50


def period(days: float) -> timedelta | None:
    """How long an answered ticket waits for the client; None when auto-close is off (0)."""
    return timedelta(days=days) if days > 0 else None


def is_due(
    *,
    status: lifecycle.Status,
    last_operator_reply_at: datetime | None,
    now: datetime,
    after: timedelta,
) -> bool:
    """Whether the system closes the ticket now: the operator replied last (`answered`) and
    `after` has passed since that reply. Other updates (a note, an assignment) do not count."""
    if status != "answered" or last_operator_reply_at is None:
        return False
    return now - last_operator_reply_at >= after


async def close_due_tickets(pool: asyncpg.Pool, *, days: float, batch: int = BATCH) -> int:
    """Close every ticket due now; how many were closed (by this call)."""
    after = period(days)
    if after is None:
        return 0
    closed = 0
    while True:
        async with unit_of_work(pool) as work:
            rows = await store.lock_auto_close_candidates(
                work.conn, older_than_seconds=after.total_seconds(), limit=batch
            )
            due = [
                row
                for row in rows
                if is_due(
                    status=row["status"],
                    last_operator_reply_at=row["last_operator_reply_at"],
                    now=row["now"],
                    after=after,
                )
            ]
            for row in due:
                await desk.close_locked(work, row, closed_by="system", name=None)
        closed += len(due)
        if len(rows) < batch or not due:
            break
    if closed:
        log.info("tickets.auto_closed", count=closed)
    return closed


def chore(days: float) -> Callable[[web.Application], Awaitable[int]]:
    """The periodic task of an app (`resources.periodic`)."""

    async def run(app: web.Application) -> int:
        return await close_due_tickets(app[POOL], days=days)

    return run
