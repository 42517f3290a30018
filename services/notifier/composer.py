"""Emails built from events: Jinja2 templates (text and HTML) in the client's language, written
as bytes by `mime` (why not `email.message`: see there).

No user text can add or change a header: every text that goes into a header is cleaned of control
characters (CR/LF included) first, and `mime.header` refuses CR/LF anyway; addresses go through
`mime.mailbox`, which refuses anything that is not one address. Templates of the HTML part
autoescape.

Decisions: the `Message-ID` is `<event-id@domain of NOTIFIER_FROM>` (stable across attempts, so a
duplicate is visible); `X-Correlation-ID` carries the correlation id; unknown languages fall back
to Spanish. A ticket email's subject says what happened, to which ticket, and the query's first
words (" — {summary}" is left out when there are none); text a client wrote is quoted bounded
(`QUOTE_MAX`), cleaned of control characters, and escaped in the HTML part like everything else.
Attachments are named with a panel link, never attached.
"""

import re
import string
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from services.notifier.mime import header, mailbox, two_part_email
from shared import events

LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"
TEMPLATES = Path(__file__).with_name("templates")
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")
# How much of a client's own text an email quotes back, and of a query's words a subject shows.
QUOTE_MAX = 2000
SUMMARY_MAX = 60
_SUMMARY_PART = " — {summary}"
# What a template may be given (an email without attachments, quote or summary need not say so).
_OPTIONAL: dict[str, Any] = {"attachments": (), "quote": "", "summary": ""}


SUBJECTS: dict[str, dict[str, str]] = {
    "es": {
        "reply": "[#{number}] Respuesta a su consulta: {subject} — {summary}",
        "receipt": "[#{number}] Recibimos su consulta: {subject} — {summary}",
        "closed": "[#{number}] Consulta cerrada: {subject} — {summary}",
        "welcome": "Bienvenido al Panel de Clientes (cliente {client_number})",
        "recovery": "Recuperar datos de acceso al Panel de Clientes",
        "email_confirm": "Confirme su nuevo email del Panel de Clientes",
        "email_notice": "Pedido de cambio del email de su cuenta (cliente {client_number})",
        "auto_reply": "Re: {subject}",
    },
    "en": {
        "reply": "[#{number}] Reply to your query: {subject} — {summary}",
        "receipt": "[#{number}] We received your query: {subject} — {summary}",
        "closed": "[#{number}] Query closed: {subject} — {summary}",
        "welcome": "Welcome to the Client Panel (client {client_number})",
        "recovery": "Recover your Client Panel access details",
        "email_confirm": "Confirm your new Client Panel email",
        "email_notice": "Request to change your account's email (client {client_number})",
        "auto_reply": "Re: {subject}",
    },
}


# The context fields each subject uses (only these are cleaned for it).
SUBJECT_FIELDS = {
    kind: {field for _, field, _, _ in string.Formatter().parse(subject) if field}
    for kind, subject in SUBJECTS[DEFAULT_LANGUAGE].items()
}


def clean_header_text(value: str, limit: int = 200) -> str:
    """One line of printable text: control characters (CR, LF, tabs...) become spaces."""
    if value.isprintable():  # no character of category C (nor a line separator): the usual case
        return " ".join(value.split())[:limit]
    chars = (" " if unicodedata.category(c).startswith("C") else c for c in value)
    return " ".join("".join(chars).split())[:limit]


def clean_message_ids(value: str | None, limit: int = 10) -> list[str]:
    """The `<id@host>` tokens of an inbound Message-ID/References header, nothing else."""
    if not value:
        return []
    return _MESSAGE_ID.findall(value)[-limit:]


def first_words(text: str, limit: int = SUMMARY_MAX) -> str:
    """The start of `text` on one line, cut at a word with "…" when longer than `limit`."""
    flat = clean_header_text(text, 10 * limit)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:—-") + "…"


def quotable(text: str, limit: int = QUOTE_MAX) -> str:
    """A client's text to quote back: line breaks and tabs kept, other control (and format,
    e.g. bidi override) characters dropped, blank edges trimmed, at most `limit` characters."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    if not lines.isprintable():
        lines = "".join(
            c if c in "\n\t" or not unicodedata.category(c).startswith("C") else "" for c in lines
        )
    lines = lines.strip()
    return lines if len(lines) <= limit else lines[: limit - 1].rstrip() + "…"


def human_size(size: int, lang: str) -> str:
    """1.5 MB (en) or 1,5 MB (es)."""
    value, unit = float(size), "B"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    text = f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
    return text.replace(".", ",") if lang == "es" else text


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


class Composer:
    def __init__(self, *, sender: str, public_url: str) -> None:
        self.sender = sender
        name, address = parseaddr(sender)
        if "@" not in address:
            raise ValueError(f"NOTIFIER_FROM is not an address: {sender!r}")
        self.sender_address = address
        self._from = f"From: {mailbox(name, address)}"
        self.domain = address.rpartition("@")[2]
        self.public_url = public_url.rstrip("/")
        loader = jinja2.FileSystemLoader(TEMPLATES)
        # auto_reload off: templates are part of the release, and checking each file's mtime
        # on every render was measurable at hundreds of emails a second.
        self._text = jinja2.Environment(
            loader=loader,
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self._html = jinja2.Environment(
            loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, auto_reload=False
        )
        for environment in (self._text, self._html):
            environment.filters["human_size"] = human_size

    def message_id(self, event_id: uuid.UUID) -> str:
        return f"<{event_id}@{self.domain}>"

    def ticket_link(self, number: int) -> str:
        return f"{self.public_url}/tickets/{number}"

    def reset_link(self, token: str) -> str:
        return f"{self.public_url}/password/reset?token={quote(token, safe='')}"

    def email_confirm_link(self, token: str) -> str:
        return f"{self.public_url}/email/confirm?token={quote(token, safe='')}"

    def panel_link(self) -> str:
        return f"{self.public_url}/tickets"

    def attachment_link(self, number: int, attachment_id: uuid.UUID) -> str:
        return f"{self.public_url}/tickets/{number}/attachments/{attachment_id}"

    def ticket_context(self, data: Any, *, name: str) -> dict[str, Any]:
        """What the templates of a ticket email (reply, receipt, closed) are given."""
        number = data.number
        context: dict[str, Any] = {
            "number": number,
            "subject": data.subject,
            "link": self.ticket_link(number),
            "name": name,
            "author_name": getattr(data, "author_name", ""),
            "body": getattr(data, "body", ""),
            "closed_by": getattr(data, "closed_by", ""),
            "closed_by_name": getattr(data, "closed_by_name", None) or "",
            "attachments": [
                {
                    "name": clean_header_text(a.name, 255),
                    "size": a.size,
                    "link": self.attachment_link(number, a.id),
                }
                for a in getattr(data, "attachments", ())
            ],
        }
        # The receipt quotes the client's query, and its subject shows the query's first words.
        summary = getattr(data, "summary", "") or (
            context["body"] if isinstance(data, events.TicketCreated) else ""
        )
        context["summary"] = first_words(summary)
        context["quote"] = quotable(context["body"])
        return context

    def compose(
        self,
        kind: str,
        context: Mapping[str, Any],
        *,
        event_id: uuid.UUID,
        recipient: str,
        language: str | None,
        recipient_name: str | None = None,
        correlation_id: str | None = None,
        in_reply_to: Sequence[str] = (),
    ) -> bytes:
        """The email of `kind` (reply, receipt, closed, welcome, recovery, email_confirm,
        email_notice, auto_reply) to `recipient`.

        Raises ValueError when `recipient` is not one address we can send to.
        """
        lang = language_of(language)
        values = {**_OPTIONAL, **context, "public_url": self.public_url, "lang": lang}
        subject_values = {k: clean_header_text(str(values[k])) for k in SUBJECT_FIELDS[kind]}
        subject = SUBJECTS[lang][kind]
        if not subject_values.get("summary"):
            subject = subject.replace(_SUMMARY_PART, "")
        headers = [
            self._from,
            f"To: {mailbox(clean_header_text(recipient_name or '', 100), recipient)}",
            header("Subject", clean_header_text(subject.format(**subject_values), 250)),
            f"Date: {format_datetime(datetime.now(UTC))}",
            f"Message-ID: {self.message_id(event_id)}",
        ]
        if kind == "auto_reply":
            headers.append("Auto-Submitted: auto-replied")
            ids = [i for i in in_reply_to if _MESSAGE_ID.fullmatch(i)]
            if ids:
                headers.append(f"In-Reply-To: {ids[-1]}")
                headers.append("References: " + "\r\n ".join(ids))
        else:
            headers.append("Auto-Submitted: auto-generated")
        if correlation_id and _CORRELATION_ID.fullmatch(correlation_id):
            headers.append(f"X-Correlation-ID: {correlation_id}")
        headers.append(f"Content-Language: {lang}")
        return two_part_email(
            headers,
            self._text.get_template(f"{lang}/{kind}.txt").render(values),
            self._html.get_template(f"{lang}/{kind}.html").render(values),
        )
