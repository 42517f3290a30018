"""The inbound SMTP listener: every message is accepted and none ever changes a ticket.

The notifier has no way to change a ticket: it holds no tickets credentials and publishes no
tickets.* event. For each message it stores a line about it (headers only), publishes
`notifier.email.rejected` and, when RFC 3834 allows, asks for one automatic answer, all in one
transaction through its outbox; the answer is then sent by the normal delivery path (retries and
dead letters included), so receiving never waits on the relay.

Decisions:
- No answer to a null sender, to `Auto-Submitted` other than `no`, to `Precedence`
  bulk/list/junk, to a message with `List-Id`, to a sender that is not one valid address, to
  a message whose headers cannot be read, nor more than once per sender (lower-cased envelope
  sender) and ticket within `auto_reply_window_days` (ticket 0: mail that names no ticket).
- The answer goes to the envelope sender (the Return-Path, RFC 3834 §4) from the null sender
  (§3.3), in the language the projection knows for that address (Spanish otherwise).
- `notifier.email.rejected.reason` is always `replies_by_email_not_considered`; `from` is the
  envelope sender, or the From address for a null sender.
- SMTP-level problems (a message over `inbound_max_bytes`: 552; bad commands or addresses: 5xx)
  are refused by aiosmtpd itself; a database outage answers 451 so the sender tries later.
"""

import asyncio
import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from typing import Any

import asyncpg
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.notifier import store
from services.notifier.composer import clean_header_text, clean_message_ids
from services.notifier.settings import NotifierSettings
from shared import events
from shared.db import DB_UNAVAILABLE_ERRORS
from shared.errors import ServiceUnavailable
from shared.logging import bind_correlation_id
from shared.unit_of_work import unit_of_work

log = structlog.get_logger(__name__)

REJECTED_REASON = "replies_by_email_not_considered"
_TICKET = re.compile(r"\[#(\d{1,18})\]")
_REPLY_PREFIX = re.compile(r"^(\s*(re|aw|sv|fwd?)\s*:\s*)+", re.IGNORECASE)


class AutoReplyRequested(events.EventData):
    """The notifier's own command to itself (never consumed by another service): answer one
    inbound message. Its event id becomes the answer's Message-ID."""

    routing_key = "notifier.auto_reply.requested"
    to: str
    subject: str
    references: list[str]
    ticket_number: int | None = None
    language: str = "es"


def _header(message: EmailMessage, name: str) -> str:
    value = message.get(name)
    return "" if value is None else str(value)


def no_answer_reason(mail_from: str, message: EmailMessage) -> str | None:
    """Why RFC 3834 forbids an automatic answer to this message (None: it allows one)."""
    if not mail_from or mail_from == "<>":
        return "null sender"
    auto = _header(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto-submitted"
    if _header(message, "Precedence").strip().lower() in ("bulk", "list", "junk"):
        return "precedence"
    if message.get("List-Id") is not None:
        return "mailing list"
    try:
        Address(addr_spec=mail_from)
    except (ValueError, TypeError, IndexError):
        return "invalid sender"
    return None


class InboundHandler:
    """aiosmtpd handler: `handle_DATA` stores, publishes and answers 250."""

    def __init__(self, pool: asyncpg.Pool, settings: NotifierSettings) -> None:
        self.pool = pool
        self.settings = settings

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
        try:
            answered = await self.receive(envelope.mail_from or "", raw)
        except (*DB_UNAVAILABLE_ERRORS, ServiceUnavailable) as exc:
            log.warning("inbound.db_unavailable", error=repr(exc))
            return "451 4.3.0 Temporarily unable to take the message; try again later"
        except Exception:
            log.exception("inbound.failed")
            return "451 4.3.0 Temporarily unable to take the message; try again later"
        note = "an automatic answer follows" if answered else "no automatic answer"
        return f"250 2.0.0 Accepted; replies by email are not considered ({note})"

    async def receive(self, mail_from: str, raw: bytes) -> bool:
        """Record one inbound message; True when an automatic answer was asked for."""
        if mail_from == "<>":  # aiosmtpd's spelling of the null sender
            mail_from = ""
        fields: dict[str, Any] = {"subject": "", "message_id": None, "references": []}
        try:
            message = BytesParser(policy=policy.default).parsebytes(raw)
            reason = no_answer_reason(mail_from, message)
            fields["subject"] = clean_header_text(_header(message, "Subject"), 200)
            ids = clean_message_ids(_header(message, "References"))
            own = clean_message_ids(_header(message, "Message-ID"))[-1:]
            fields["message_id"] = own[0] if own else None
            fields["references"] = [i for i in ids if i not in own] + own
            header_from = parseaddr(_header(message, "From"))[1]
        except Exception as exc:  # headers we cannot read: keep the fact, answer nobody
            log.warning("inbound.malformed", error=repr(exc)[:300])
            reason, header_from = "malformed headers", ""
        match = _TICKET.search(fields["subject"])
        ticket_number = int(match.group(1)) if match else None
        sender = mail_from.strip().lower()
        async with unit_of_work(self.pool, timeout=5) as work:
            conn = work.conn
            window = self.settings.auto_reply_window_days * 86_400
            if reason is None:
                # The ticket number is whatever the subject says: without a cap per sender, a
                # forged sender and [#1], [#2]... would make us answer (spam) one address forever.
                await store.lock_sender(conn, sender)
                if (
                    await store.recent_auto_replies(conn, sender, window)
                    >= self.settings.auto_reply_max_per_sender
                ):
                    reason = "too many automatic answers to this sender within the window"
                elif not await store.claim_auto_reply(conn, sender, ticket_number or 0, window):
                    reason = "already answered within the window"
            await store.add_inbound(
                conn,
                mail_from=mail_from[:320],
                ticket_number=ticket_number,
                message_id=fields["message_id"],
                subject=fields["subject"],
                size=len(raw),
                answered=reason is None,
                reason=reason or "answered",
            )
            aggregate = f"inbound:{sender or header_from.lower()}"[:400]
            work.add_event(
                events.EmailRejected(
                    from_=clean_header_text(mail_from or header_from, 320),
                    ticket_number=ticket_number,
                    reason=REJECTED_REASON,
                ),
                aggregate=aggregate,
            )
            if reason is None:
                language = await store.language_of_address(conn, mail_from) or "es"
                work.add_event(
                    AutoReplyRequested(
                        to=mail_from,
                        subject=_REPLY_PREFIX.sub("", fields["subject"]) or "(sin asunto)",
                        references=fields["references"],
                        ticket_number=ticket_number,
                        language=language,
                    ),
                    aggregate=aggregate,
                )
        log.info(
            "inbound.received",
            ticket_number=ticket_number,
            size=len(raw),
            answered=reason is None,
            reason=reason or "answered",
        )
        return reason is None


class InboundServer:
    """The SMTP listener, on the running loop."""

    def __init__(self, handler: InboundHandler, settings: NotifierSettings) -> None:
        self.handler = handler
        self.settings = settings
        self._server: asyncio.Server | None = None
        self.port = settings.inbound_port

    def _protocol(self) -> SMTP:
        return SMTP(
            self.handler,
            data_size_limit=self.settings.inbound_max_bytes,
            hostname=self.settings.inbound_hostname,
            ident="Helpdesk notifier",
            enable_SMTPUTF8=True,
            timeout=60,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, host=self.settings.inbound_host, port=self.settings.inbound_port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("inbound.listening", host=self.settings.inbound_host, port=self.port)

    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
