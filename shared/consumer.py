"""The idempotent consumer: an event id is recorded in the same transaction as its effect.

`INSERT ... ON CONFLICT DO NOTHING` on (consumer, event id) is the one atomic step that decides:
no row inserted means the event was handled before, and it is acknowledged without effect.
"""

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from shared.db import DB_UNAVAILABLE_ERRORS
from shared.events import Envelope
from shared.logging import bind_correlation_id
from shared.retry import Backoff, retrying

log = structlog.get_logger(__name__)

EventHandler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
# A failed event goes back to its queue after this pause, so that one failing at once every time
# cannot spin.
FAILED_PAUSE = 0.1


class PoisonMessage(Exception):
    """The event can never be handled (bad content): dead-letter it now, do not retry."""


_RECORD = """
INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING RETURNING true
"""


async def record_once(conn: asyncpg.Connection, consumer: str, envelope: Envelope) -> bool:
    """True the first time this consumer sees this event id (in the caller's transaction)."""
    return bool(await conn.fetchval(_RECORD, consumer, envelope.id))


def idempotent_consumer(
    consumer: str,
    pool: asyncpg.Pool,
    handler: EventHandler,
    *,
    db_retry_max: float = 10.0,
) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    """Wrap `handler(conn, envelope)` into an AMQP callback with manual acks.

    - bad JSON or envelope, or PoisonMessage: rejected without requeue (dead-lettered);
    - the database away: the message is kept unacked and retried with growing pauses, since
      an outage is not the message's fault and must not use up its delivery limit;
    - any other failure: requeued after a pause; past the queue's delivery limit RabbitMQ
      dead-letters it.
    """

    async def on_message(message: AbstractIncomingMessage) -> None:
        bind_correlation_id(message.correlation_id)
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError as exc:
            log.error("consumer.bad_envelope", consumer=consumer, error=str(exc)[:500])
            await message.reject(requeue=False)
            return
        bound = log.bind(consumer=consumer, event_id=str(envelope.id), event_type=envelope.type)

        async def handle() -> None:
            async with pool.acquire(timeout=5) as conn, conn.transaction():
                if await record_once(conn, consumer, envelope):
                    await handler(conn, envelope)
                else:
                    bound.info("consumer.duplicate_ignored")

        try:
            await retrying(
                handle,
                retry_on=DB_UNAVAILABLE_ERRORS,
                what="consumer.db_unavailable",
                backoff=Backoff(ceiling=db_retry_max),
            )
        except (PoisonMessage, ValidationError) as exc:
            bound.error("consumer.poison", error=str(exc)[:500])
            await message.reject(requeue=False)
            return
        except Exception:
            bound.exception("consumer.failed")
            await asyncio.sleep(FAILED_PAUSE)
            await message.nack(requeue=True)
            return
        await message.ack()

    return on_message
