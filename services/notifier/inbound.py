"""Inbound mail: every message within bounds is accepted and none ever changes a ticket.

The notifier has no way to change a ticket: it holds no tickets credentials and publishes no
tickets.* event. For each message it stores a line about it (headers only), publishes
`notifier.email.rejected` and, when RFC 3834 allows, asks for one automatic answer, all in one
transaction through its outbox; the answer is then sent by the normal delivery path (retries and
dead letters included), so receiving never waits on the relay.

Decisions:
- No answer to a null sender, to `Auto-Submitted` other than `no`, to `Precedence`
  bulk/list/junk, to a message with `List-Id`, to a sender that is not one valid address, to
  a message whose headers cannot be read, nor more than once per sender (lower-cased envelope
  sender) and ticket within `auto_reply_window_days` (ticket 0: mail that names no ticket), nor
  more than `auto_reply_max_per_client_address` times an hour to messages from one SMTP client.
- The answer goes to the envelope sender (the Return-Path, RFC 3834 §4) from the null sender
  (§3.3), in the language the projection knows for that address (Spanish otherwise); the subject
  it echoes is cut to 100 characters (SPEC §9.3).
- The answer quotes the message's plain text (at most 2,000 characters, control characters
  dropped, escaped in the HTML part), so the client can paste it into the panel; only when the
  envelope sender is a client's address the projection knows: otherwise anyone could make us
  mail their text to any address by forging the sender.
- `notifier.email.rejected.reason` is always `replies_by_email_not_considered`; `from` is the
  envelope sender, or the From address for a null sender.
- Refused at DATA, before anything parses them (`headers`): headers over SPEC §9.3's bounds
  (552). Headers are read in a worker process with a time limit (`worker_pool`); a message that
  cannot be read in time, or finds every worker busy, is answered 451 (try later). SMTP-level
  problems (a message over `inbound_max_bytes`: 552; bad commands or addresses: 5xx; too many
  connections: 421) are refused by the listener (`listener`); a database outage answers 451 so
  the sender tries later.
"""

import re
from email.headerregistry import Address
from typing import Any

import asyncpg
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.notifier import store
from services.notifier.composer import clean_header_text
from services.notifier.headers import (
    MAX_FIELD_CHARS,
    MAX_HEADER_BYTES,
    QUOTE_READ_BYTES,
    HeadersTooLarge,
    InboundHeaders,
    header_section,
)
from services.notifier.settings import NotifierSettings
from services.notifier.worker_pool import WorkerBusy, WorkerDied, WorkerPool, WorkTimedOut
from shared import events
from shared.db import DB_UNAVAILABLE_ERRORS
from shared.errors import ServiceUnavailable
from shared.http import address_key
from shared.logging import bind_correlation_id
from shared.unit_of_work import unit_of_work

log = structlog.get_logger(__name__)

REJECTED_REASON = "replies_by_email_not_considered"
ECHOED_SUBJECT_MAX = 100  # SPEC §9.3
CLIENT_WINDOW_SECONDS = 3600  # SPEC §9.3: automatic answers per client address and hour
_TICKET = re.compile(r"\[#(\d{1,18})\]")
_REPLY_PREFIX = re.compile(r"^(\s*(re|aw|sv|fwd?)\s*:\s*)+", re.IGNORECASE)

TOO_LARGE = "552 5.3.4 Message headers too large (at most {} bytes, {} characters per header)"
TRY_LATER = "451 4.3.0 Temporarily unable to take the message; try again later"


class AutoReplyRequested(events.EventData):
    """The notifier's own command to itself (never consumed by another service): answer one
    inbound message. Its event id becomes the answer's Message-ID."""

    routing_key = "notifier.auto_reply.requested"
    to: str
    subject: str
    references: list[str]
    ticket_number: int | None = None
    language: str = "es"
    # The text the sender wrote (bounded, cleaned), quoted back so it can be pasted into the
    # panel; only for a sender the notifier knows as a client's address.
    quote: str = ""


def client_address(peer: Any) -> str | None:
    """The address answers are capped by (`shared.http.address_key`: an IPv6 client's /64)."""
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    return None if host is None else address_key(str(host))


def echoed_subject(subject: str) -> str:
    """The subject an automatic answer repeats (after "Re: "), at most 100 characters."""
    return _REPLY_PREFIX.sub("", subject)[:ECHOED_SUBJECT_MAX].strip() or "(sin asunto)"


class InboundHandler:
    """aiosmtpd handler: `handle_DATA` bounds, reads, stores, publishes and answers 250."""

    def __init__(
        self, pool: asyncpg.Pool, settings: NotifierSettings, readers: WorkerPool[Any, Any]
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.readers = readers

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if address not in ("", "<>"):
            try:
                Address(addr_spec=address)
            except (ValueError, TypeError, IndexError):
                return "553 5.1.7 The sender address is not valid"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        bind_correlation_id(None)
        raw = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not raw:
            raw = envelope.content
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":  # aiosmtpd's spelling of the null sender
            mail_from = ""
        client = client_address(session.peer)
        try:
            section = header_section(raw)
        except HeadersTooLarge as exc:
            log.warning("inbound.refused", problem=str(exc), size=len(raw), client=client)
            return TOO_LARGE.format(MAX_HEADER_BYTES, MAX_FIELD_CHARS)
        try:
            body = raw[len(section) : len(section) + QUOTE_READ_BYTES]
            headers = await self.readers.run((mail_from, section, body))
        except (WorkerBusy, WorkTimedOut, WorkerDied) as exc:
            log.warning(
                "inbound.headers_unread", problem=str(exc), size=len(section), client=client
            )
            return TRY_LATER
        try:
            answered = await self.receive(mail_from, headers, size=len(raw), client=client)
        except (*DB_UNAVAILABLE_ERRORS, ServiceUnavailable) as exc:
            log.warning("inbound.db_unavailable", error=repr(exc))
            return TRY_LATER
        except Exception:
            log.exception("inbound.failed")
            return TRY_LATER
        note = "an automatic answer follows" if answered else "no automatic answer"
        return f"250 2.0.0 Accepted; replies by email are not considered ({note})"

    async def receive(
        self, mail_from: str, headers: InboundHeaders, *, size: int, client: str | None
    ) -> bool:
        """Record one inbound message; True when an automatic answer was asked for."""
        reason = headers.no_answer_reason
        match = _TICKET.search(headers.subject)
        ticket_number = int(match.group(1)) if match else None
        sender = mail_from.strip().lower()
        async with unit_of_work(self.pool, timeout=5) as work:
            conn = work.conn
            if reason is None:
                reason = await self._cap_reason(conn, sender, ticket_number, client)
            await store.add_inbound(
                conn,
                mail_from=mail_from[:320],
                ticket_number=ticket_number,
                message_id=headers.message_id,
                subject=headers.subject,
                size=size,
                answered=reason is None,
                reason=reason or "answered",
                client_address=client,
            )
            aggregate = f"inbound:{sender or headers.header_from.lower()}"[:400]
            work.add_event(
                events.EmailRejected(
                    from_=clean_header_text(mail_from or headers.header_from, 320),
                    ticket_number=ticket_number,
                    reason=REJECTED_REASON,
                ),
                aggregate=aggregate,
            )
            if reason is None:
                language = await store.language_of_address(conn, mail_from)
                work.add_event(
                    AutoReplyRequested(
                        to=mail_from,
                        subject=echoed_subject(headers.subject),
                        references=list(headers.references),
                        ticket_number=ticket_number,
                        language=language or "es",
                        # A forged sender must not make us mail any text to any address.
                        quote=headers.quote if language is not None else "",
                    ),
                    aggregate=aggregate,
                )
        log.info(
            "inbound.received",
            ticket_number=ticket_number,
            size=size,
            client=client,
            answered=reason is None,
            reason=reason or "answered",
        )
        return reason is None

    async def _cap_reason(
        self, conn: asyncpg.Connection, sender: str, ticket_number: int | None, client: str | None
    ) -> str | None:
        """Why the caps forbid this answer (None: it may go, and is now counted)."""
        settings = self.settings
        if client is not None:
            # Locks in one order (client, then sender), so concurrent messages cannot deadlock.
            await store.lock_client_address(conn, client)
            recent = await store.recent_answers_to_client(conn, client, CLIENT_WINDOW_SECONDS)
            if recent >= settings.auto_reply_max_per_client_address:
                return "too many automatic answers to this client address within the hour"
        # The ticket number is whatever the subject says: without a cap per sender, a forged
        # sender and [#1], [#2]... would make us answer (spam) one address forever.
        window = settings.auto_reply_window_days * 86_400
        await store.lock_sender(conn, sender)
        if await store.recent_auto_replies(conn, sender, window) >= (
            settings.auto_reply_max_per_sender
        ):
            return "too many automatic answers to this sender within the window"
        if not await store.claim_auto_reply(conn, sender, ticket_number or 0, window):
            return "already answered within the window"
        return None
