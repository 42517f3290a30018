"""Events in, email out, each at most once in practice: the consumer of `notifier.events`.

For an event that asks for an email (SPEC §7):
1. the attempt is recorded and committed with a lease (`emails.status = sending`,
   `lease_until`); an email already `sent` or `dead` is acknowledged without effect (a
   redelivered or duplicated event), and one leased to another delivery is looked at again later;
2. the email is composed now, from the projection as it is now (an email change made after the
   event was queued still applies), and sent, within the lease;
3. it is marked sent, then the message is acknowledged.
A crash between 2 and 3 sends it again once the lease has run out (logged as
`email.resent_after_interruption`). No database connection is held while the relay is talked to.

Failures: relay down, timeouts or 4xx (or a client the projection does not know yet): the message
is acknowledged and a copy goes to the delay queue of its retry number, a quorum queue whose
`x-message-ttl` dead-letters it back into `notifier.events` through the default exchange: growing
pauses, no busy loop, and other messages flow meanwhile. A 5xx, an unusable address, or retries
exhausted: the email is `dead` and the event is kept in `dead_letters`. Poison (a reply whose
channel is not panel/api, an invalid event) is kept in `dead_letters` too and rejected to the
queue's dead-letter queue, which is drained into the same table (with whatever else RabbitMQ
dead-letters there, e.g. over the delivery limit). An admin replays a dead letter: its email (if
any) becomes pending again and the event goes back into `notifier.events`; resending a dead email
(`GET /v1/deliveries` lists them by ticket) is the same replay, found by the email's event id.
"""

import asyncio
import contextlib
import uuid
from typing import Any

import aio_pika
import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from services.notifier import store
from services.notifier.composer import Composer, language_of, quotable
from services.notifier.inbound import AutoReplyRequested
from services.notifier.mailer import Mailer, SendFailed
from services.notifier.mime import ascii_address
from services.notifier.settings import NotifierSettings
from shared import events, sealing
from shared.broker import Broker, BrokerUnavailable, QueueSpec
from shared.consumer import FAILED_PAUSE, PoisonMessage, record_once
from shared.db import DB_UNAVAILABLE_ERRORS
from shared.errors import Conflict, NotFound, ServiceUnavailable
from shared.events import Envelope
from shared.http import validation_errors
from shared.logging import bind_correlation_id, current_correlation_id
from shared.retry import Backoff, retrying

log = structlog.get_logger(__name__)

# Every event that may ask for an email, or changes what the notifier knows of a client, and
# the notifier's own command to answer an inbound message.
EVENTS = QueueSpec(
    "notifier.events",
    (
        events.ClientCreated.routing_key,
        events.ClientUpdated.routing_key,
        events.PasswordRecoveryRequested.routing_key,
        events.EmailChangeRequested.routing_key,
        events.EmailChangeNotice.routing_key,
        events.TicketCreated.routing_key,
        events.TicketReplied.routing_key,
        events.TicketClosed.routing_key,
        AutoReplyRequested.routing_key,
    ),
)
EVENTS_QUEUE = EVENTS.name
DEAD_QUEUE = EVENTS.dead_letter_queue
PROJECTION_CONSUMER = "notifier.clients"
RETRY_HEADER = "x-notifier-retry"
CHANNELS = ("panel", "api")
# Emails to a ticket's client, addressed through the projection.
TICKET_KINDS = ("reply", "receipt", "closed")
# Who closed a ticket, when the client is told (a client who closed it knows).
CLOSED_NOTICE_BY = ("operator", "system")
# What a lease leaves beyond the relay's time limits: recording "sent", and the clocks of this
# process and of PostgreSQL (which dates the lease) starting a moment apart.
LEASE_MARGIN = 5.0
# Recording an email sent is retried at a quicker pace: the lease runs meanwhile.
MARK_SENT_BACKOFF = Backoff(ceiling=1.0)


def delay_queue_name(seconds: float) -> str:
    return f"{EVENTS_QUEUE}.retry.{round(seconds * 1000)}ms"


def delay_topology(delays: list[float]):
    """The delay queues of the retries (broker.add_topology)."""

    async def declare(channel: AbstractChannel) -> None:
        for seconds in sorted(set(delays)):
            await channel.declare_queue(
                delay_queue_name(seconds),
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-message-ttl": round(seconds * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": EVENTS_QUEUE,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )

    return declare


def email_kind(data: events.EventData) -> str | None:
    """Which email an event asks for (None: none); PoisonMessage for a reply from an unknown
    channel, which must never be sent."""
    if isinstance(data, events.TicketReplied):
        if data.channel not in CHANNELS:
            raise PoisonMessage(f"reply from unknown channel {data.channel[:40]!r}")
        return "reply" if data.author_kind == "operator" else None
    if isinstance(data, events.TicketCreated):
        return "receipt"
    if isinstance(data, events.TicketClosed):
        return "closed" if data.closed_by in CLOSED_NOTICE_BY else None
    if isinstance(data, events.ClientCreated):
        return "welcome" if data.set_password_token else None
    if isinstance(data, events.PasswordRecoveryRequested):
        return "recovery"
    if isinstance(data, events.EmailChangeRequested):
        return "email_confirm"
    if isinstance(data, events.EmailChangeNotice):
        return "email_notice"
    if isinstance(data, AutoReplyRequested):
        return "auto_reply"
    return None


def ticket_of(data: events.EventData) -> int | None:
    """The ticket an email is about, for its delivery status (None: about no ticket)."""
    if isinstance(data, AutoReplyRequested):
        return data.ticket_number
    number = getattr(data, "number", None)
    return number if isinstance(number, int) else None


def describe(exc: ValidationError) -> str:
    """What is wrong, field by field, without the values (they may hold a reset token)."""
    return "; ".join(f"{e['field']}: {e['message']}" for e in validation_errors(exc))[:300]


def parse(envelope: Envelope) -> events.EventData:
    try:
        if envelope.type == AutoReplyRequested.routing_key:
            return AutoReplyRequested.model_validate(envelope.data)
        return envelope.parsed()
    except KeyError as exc:
        raise PoisonMessage(f"unexpected event type {envelope.type[:80]}") from exc
    except ValidationError as exc:
        raise PoisonMessage(f"invalid {envelope.type}: {describe(exc)}") from exc


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("emails_sent_total", "Emails sent", ["kind"], registry=registry)
        self.failed = Counter(
            "emails_failed_total", "Failed send attempts", ["kind", "permanent"], registry=registry
        )
        self.dead = Counter("emails_dead_total", "Dead letters recorded", registry=registry)
        self.resent = Counter(
            "emails_resent_after_interruption_total",
            "Emails sent again after an attempt that was interrupted (possible duplicates)",
            registry=registry,
        )


class Delivery:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        broker: Broker,
        settings: NotifierSettings,
        composer: Composer,
        mailer: Mailer,
        metrics: Metrics,
        sealing_key: str,
    ) -> None:
        self.pool = pool
        self.sealing_key = sealing_key
        self.broker = broker
        self.settings = settings
        self.composer = composer
        self.mailer = mailer
        self.metrics = metrics
        # Connecting and sending each take at most `smtp_timeout`: the lease outlasts both.
        self.lease_seconds = 2 * settings.smtp_timeout + LEASE_MARGIN
        self._handling: set[asyncio.Task] = set()

    # --- notifier.events -----------------------------------------------------------------------

    async def on_event(self, message: AbstractIncomingMessage) -> None:
        """aiormq cancels a consumer's callbacks when their channel closes (a broker restart or
        crash). Cancelled between the relay's 250 and recording "sent", an email went out twice:
        the redelivered event found it `sending` and sent it again (seen by tests/faults). The
        handling runs to its end on a task of its own; only the ack is lost with the channel,
        and the redelivery then finds the email sent."""
        task = asyncio.create_task(self._on_event(message))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        await asyncio.shield(task)

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        bind_correlation_id(message.correlation_id)
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError as exc:
            await self._poison(message, None, f"not a valid event envelope: {describe(exc)}")
            return
        try:
            # The database away is not the message's fault: it is kept (unacked) meanwhile.
            await retrying(
                lambda: self._handle(message, envelope),
                retry_on=DB_UNAVAILABLE_ERRORS,
                what="notifier.db_unavailable",
            )
        except PoisonMessage as exc:
            await self._poison(message, envelope, str(exc))
        except Exception:
            log.exception("notifier.event_failed", event_id=str(envelope.id))
            await asyncio.sleep(FAILED_PAUSE)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)  # past the delivery limit: dead-lettered

    async def _handle(self, message: AbstractIncomingMessage, envelope: Envelope) -> None:
        data = parse(envelope)
        if isinstance(data, events.ClientCreated | events.ClientUpdated):
            async with self.pool.acquire(timeout=5) as conn, conn.transaction():
                if await record_once(conn, PROJECTION_CONSUMER, envelope):
                    await store.upsert_client(
                        conn,
                        data.client_number,
                        envelope.occurred_at,
                        name=data.name,
                        email=data.email,
                        language=data.language,
                    )
        kind = email_kind(data)
        if kind is None:
            await message.ack()
            return
        await self._deliver(message, envelope, data, kind)

    async def _deliver(
        self,
        message: AbstractIncomingMessage,
        envelope: Envelope,
        data: events.EventData,
        kind: str,
    ) -> None:
        bound = log.bind(event_id=str(envelope.id), kind=kind)
        client_number = data.client_number if kind in TICKET_KINDS else None
        lease = self.lease_seconds
        async with self.pool.acquire(timeout=5) as conn:
            attempt = await store.begin_attempt(
                conn, envelope.id, kind, client_number, lease, ticket_number=ticket_of(data)
            )
            status = None if attempt is not None else await store.email_status(conn, envelope.id)
        if attempt is None:
            if status == "sending":
                # Another delivery of this event holds the lease (a redelivery while the first
                # is still at the relay): look again later, without counting a failure.
                bound.info("email.leased_elsewhere")
                await self._retry_later(message, _retry_number(message))
            else:
                bound.info("email.duplicate_ignored")
                await message.ack()
            return
        if attempt["previous"] == "sending":
            bound.warning("email.resent_after_interruption", attempts=attempt["attempts"])
            self.metrics.resent.inc()
        # The relay is done with before the lease runs out, so no other delivery can take the
        # email over while this one may still send it.
        deadline = asyncio.get_running_loop().time() + lease - LEASE_MARGIN
        recipient: str | None = None
        try:
            recipient, email = self._compose(envelope, data, kind, attempt)
            sender = "" if kind == "auto_reply" else self.composer.sender_address
            async with self.mailer.connection() as relay:
                async with asyncio.timeout_at(deadline):
                    await relay.send(email, sender=sender, recipients=[recipient])
                # Before QUIT: the shortest window in which a crash repeats the email.
                await self._mark_sent(envelope.id, recipient)
        except (SendFailed, TimeoutError) as exc:
            failure = (
                exc if isinstance(exc, SendFailed) else SendFailed("timed out", permanent=False)
            )
            self.metrics.failed.labels(kind, str(failure.permanent).lower()).inc()
            bound.warning("email.send_failed", error=failure.reason)
            await self._failed(message, envelope, failure, recipient)
            return
        except Exception as exc:
            # Nothing went out: the attempt is over (not interrupted).
            with contextlib.suppress(Exception):
                async with self.pool.acquire(timeout=5) as conn:
                    await store.mark_failed(conn, envelope.id, repr(exc), recipient=recipient)
            raise
        self.metrics.sent.labels(kind).inc()
        bound.info("email.sent")
        await message.ack()

    def _compose(
        self, envelope: Envelope, data: Any, kind: str, attempt: asyncpg.Record
    ) -> tuple[str, bytes]:
        name: str | None = None
        if kind in TICKET_KINDS:
            if not attempt["email"]:
                # The projection may not have caught up yet: worth another try later.
                raise SendFailed(f"client {data.client_number} not known yet", permanent=False)
            recipient, language, name = attempt["email"], attempt["language"], attempt["name"]
            context = self.composer.ticket_context(data, name=name or "")
        elif kind == "welcome":
            recipient, language, name = data.email, data.language, data.name
            context = {
                "client_number": data.client_number,
                "name": data.name,
                "link": self.composer.reset_link(self._open(data.set_password_token)),
            }
        elif kind == "recovery":
            recipient, language = data.email, data.language
            link = self.composer.reset_link(self._open(data.reset_token))
            context = {"client_number": data.client_number, "link": link}
        elif kind == "email_confirm":
            # To the new address, from the event: it is not the client's email yet.
            recipient, language, name = data.new_email, data.language, data.name
            link = self.composer.email_confirm_link(self._open(data.confirm_token))
            context = {"client_number": data.client_number, "name": data.name, "link": link}
            context["new_email"] = data.new_email
        elif kind == "email_notice":
            # To the address the email change would replace; no link (SPEC 9.1): nothing in it
            # for whoever reads that mailbox to follow.
            recipient, language, name = data.email, data.language, data.name
            context = {"client_number": data.client_number, "name": data.name}
            context["new_email"] = data.new_email
        else:  # auto_reply
            recipient, language = data.to, data.language
            link = (
                self.composer.ticket_link(data.ticket_number)
                if data.ticket_number
                else self.composer.panel_link()
            )
            context = {"ticket_number": data.ticket_number, "subject": data.subject, "link": link}
            context["quote"] = quotable(data.quote)
        try:
            email = self.composer.compose(
                kind,
                context,
                event_id=envelope.id,
                recipient=recipient,
                language=language_of(language),
                recipient_name=name,
                correlation_id=current_correlation_id(),
                in_reply_to=getattr(data, "references", ()),
            )
            # The envelope's recipient as the To header has it: the domain in IDNA.
            recipient = ascii_address(recipient)
        except (ValueError, TypeError) as exc:
            raise SendFailed(f"cannot address the email: {exc}"[:500], permanent=True) from exc
        return recipient, email

    def _open(self, token: str | None) -> str:
        """A link's token, sealed for this notifier by auth (shared/sealing.py)."""
        try:
            return sealing.open_sealed(self.sealing_key, token or "")
        except sealing.SealError as exc:
            # Sealed for another key (NOTIFIER_SEALING_KEY changed) or not sealed at all: no
            # attempt will ever open it, and the client can ask for a new link.
            raise SendFailed(f"the link's token cannot be opened: {exc}", permanent=True) from exc

    async def _mark_sent(self, event_id: uuid.UUID, to: str) -> None:
        """Record the email sent. Sent is sent: if the database is away now, insist rather than
        let a redelivery send the email a second time."""

        async def mark() -> None:
            async with self.pool.acquire(timeout=5) as conn:
                await store.mark_sent(conn, event_id, to)

        await retrying(
            mark, retry_on=DB_UNAVAILABLE_ERRORS, what="email.mark_sent", backoff=MARK_SENT_BACKOFF
        )

    async def _failed(
        self,
        message: AbstractIncomingMessage,
        envelope: Envelope,
        failure: SendFailed,
        recipient: str | None,
    ) -> None:
        retry = _retry_number(message)
        if failure.permanent or retry >= len(self.settings.retry_delays):
            reason = failure.reason if failure.permanent else f"retries exhausted: {failure.reason}"
            async with self.pool.acquire(timeout=5) as conn, conn.transaction():
                await store.mark_dead(conn, envelope.id, reason, recipient=recipient)
                await self._add_dead_letter(conn, message, envelope, reason)
            self.metrics.dead.inc()
            log.error("email.dead", event_id=str(envelope.id), reason=reason)
            await message.ack()
            return
        async with self.pool.acquire(timeout=5) as conn:
            await store.mark_failed(conn, envelope.id, failure.reason, recipient=recipient)
        await self._retry_later(message, retry + 1)

    async def _retry_later(self, message: AbstractIncomingMessage, retry: int) -> None:
        """A copy of the message, numbered `retry`, into the delay queue of that number (the
        last one beyond it); the message itself is acknowledged. With the broker away, it is
        given back instead."""
        delays = self.settings.retry_delays
        copy = aio_pika.Message(
            message.body,
            message_id=message.message_id,
            type=message.type,
            content_type=message.content_type,
            correlation_id=message.correlation_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={RETRY_HEADER: retry},
        )
        # The nth retry waits the nth delay; a look again that is no retry (0), the first.
        queue = delay_queue_name(delays[max(retry, 1) - 1])
        try:
            await self.broker.send(copy, queue, to_queue=True)
        except BrokerUnavailable:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        log.info("email.retry_scheduled", event_id=message.message_id, retry=retry)
        await message.ack()

    async def _add_dead_letter(
        self,
        conn: asyncpg.Connection,
        message: AbstractIncomingMessage,
        envelope: Envelope | None,
        reason: str,
    ) -> None:
        await store.add_dead_letter(
            conn,
            event_id=envelope.id if envelope else _event_id_of(message),
            event_type=envelope.type if envelope else (message.type or "unknown"),
            body=message.body,
            correlation_id=message.correlation_id,
            reason=reason,
        )

    async def _poison(
        self, message: AbstractIncomingMessage, envelope: Envelope | None, reason: str
    ) -> None:
        log.error("notifier.poison", reason=reason)
        # Recorded with its reason now; the copy RabbitMQ dead-letters is then the same entry.
        with contextlib.suppress(*DB_UNAVAILABLE_ERRORS):
            async with self.pool.acquire(timeout=5) as conn:
                await self._add_dead_letter(conn, message, envelope, reason)
        self.metrics.dead.inc()
        await message.reject(requeue=False)

    # --- notifier.events.dead: whatever RabbitMQ dead-lettered ---------------------------------

    async def on_dead(self, message: AbstractIncomingMessage) -> None:
        reason = _death_reason(message)
        try:
            envelope: Envelope | None = Envelope.model_validate_json(message.body)
        except ValidationError:
            envelope = None

        async def record() -> None:
            async with self.pool.acquire(timeout=5) as conn:
                await self._add_dead_letter(conn, message, envelope, reason)

        await retrying(record, retry_on=DB_UNAVAILABLE_ERRORS, what="notifier.db_unavailable")
        await message.ack()

    # --- replay (admin) ------------------------------------------------------------------------

    async def replay(self, dead_letter_id: int) -> asyncpg.Record:
        """Put a dead letter back into notifier.events; 404 unknown, 409 already replayed."""
        async with self.pool.acquire(timeout=3) as conn, conn.transaction():
            row = await store.get_dead_letter(conn, dead_letter_id, lock=True)
            if row is None:
                raise NotFound("There is no such dead letter.")
            if row["replayed_at"] is not None:
                raise Conflict("This dead letter was replayed already.")
            replayed = await self._replay_locked(conn, row)
        log.info("notifier.dead_letter_replayed", id=dead_letter_id, event_id=str(row["event_id"]))
        return replayed

    async def resend(self, event_id: uuid.UUID) -> asyncpg.Record:
        """Send a dead email again, by replaying its dead letter; 404 unknown, 409 not dead."""
        async with self.pool.acquire(timeout=3) as conn, conn.transaction():
            # Locked in replay's order (the dead letter, then the email): no deadlock between
            # an admin's resend and another's replay of the same event.
            dead_letter = await store.waiting_dead_letter_of(conn, event_id)
            email = await store.get_email(conn, event_id, lock=True)
            if email is None:
                raise NotFound("There is no such email.")
            if email["status"] != "dead" or dead_letter is None:
                raise Conflict("Only an email that could not be sent (dead) can be resent.")
            await self._replay_locked(conn, dead_letter)
            resent = await store.get_email(conn, event_id)
        log.info("notifier.email_resent", id=dead_letter["id"], event_id=str(event_id))
        return resent

    async def _replay_locked(self, conn: asyncpg.Connection, row: asyncpg.Record) -> asyncpg.Record:
        """The dead letter `row` (locked by the caller's transaction) back into the queue."""
        # The email row stays locked until commit: the replayed event, if consumed at once,
        # waits for it and then finds the email pending.
        await store.reopen_email(conn, row["event_id"])
        message = aio_pika.Message(
            bytes(row["body"]),
            message_id=str(row["event_id"]),
            type=row["event_type"],
            content_type="application/json",
            correlation_id=row["correlation_id"],
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self.broker.send(message, EVENTS_QUEUE, to_queue=True)
        except BrokerUnavailable as exc:
            raise ServiceUnavailable("The message broker is unavailable.") from exc
        return await store.mark_replayed(conn, row["id"])


def _retry_number(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(RETRY_HEADER, 0)
    try:
        return max(0, int(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _event_id_of(message: AbstractIncomingMessage) -> uuid.UUID:
    try:
        return uuid.UUID(str(message.message_id))
    except ValueError:
        # Stable for the same bytes, so the same bad message is one entry.
        return uuid.uuid5(uuid.NAMESPACE_OID, message.body.hex())


def _death_reason(message: AbstractIncomingMessage) -> str:
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = deaths[0].get("reason")
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        return f"dead-lettered by RabbitMQ: {reason}"
    return "dead-lettered by RabbitMQ"
