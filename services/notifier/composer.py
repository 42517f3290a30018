"""Emails built from events: Jinja2 templates (text and HTML) in the client's language, put
together with `email.message.EmailMessage` and `policy.default`.

No user text can add or change a header: every text that goes into a header is cleaned of control
characters (CR/LF included) first, and `policy.default` refuses CR/LF anyway; addresses go through
`headerregistry.Address`, which refuses anything that is not one address. Templates of the HTML
part autoescape.

Decisions: the `Message-ID` is `<event-id@domain of NOTIFIER_FROM>` (stable across attempts, so a
duplicate is visible); `X-Correlation-ID` carries the correlation id; unknown languages fall back
to Spanish.
"""

import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"
TEMPLATES = Path(__file__).with_name("templates")
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")


class _HeaderClasses(HeaderRegistry):
    """`HeaderRegistry` makes a new class for every header of every email (`type(...)` on each
    lookup), a good part of composing one; the class only depends on the header's name, so
    each is made once. Same headers, same output."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


POLICY = default_policy.clone(header_factory=_HeaderClasses())

SUBJECTS: dict[str, dict[str, str]] = {
    "es": {
        "reply": "[#{number}] {subject}",
        "receipt": "[#{number}] Recibimos su ticket: {subject}",
        "welcome": "Bienvenido al Panel de Clientes (cliente {client_number})",
        "recovery": "Recuperar datos de acceso al Panel de Clientes",
        "auto_reply": "Re: {subject}",
    },
    "en": {
        "reply": "[#{number}] {subject}",
        "receipt": "[#{number}] We received your ticket: {subject}",
        "welcome": "Welcome to the Client Panel (client {client_number})",
        "recovery": "Recover your Client Panel access details",
        "auto_reply": "Re: {subject}",
    },
}


def clean_header_text(value: str, limit: int = 200) -> str:
    """One line of printable text: control characters (CR, LF, tabs...) become spaces."""
    chars = (" " if unicodedata.category(c).startswith("C") else c for c in value)
    return " ".join("".join(chars).split())[:limit]


def clean_message_ids(value: str | None, limit: int = 10) -> list[str]:
    """The `<id@host>` tokens of an inbound Message-ID/References header, nothing else."""
    if not value:
        return []
    return _MESSAGE_ID.findall(value)[-limit:]


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


class Composer:
    def __init__(self, *, sender: str, public_url: str) -> None:
        self.sender = sender
        _, address = parseaddr(sender)
        if "@" not in address:
            raise ValueError(f"NOTIFIER_FROM is not an address: {sender!r}")
        self.sender_address = address
        self.domain = address.rpartition("@")[2]
        self.public_url = public_url.rstrip("/")
        loader = jinja2.FileSystemLoader(TEMPLATES)
        self._text = jinja2.Environment(
            loader=loader,
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self._html = jinja2.Environment(
            loader=loader, autoescape=True, undefined=jinja2.StrictUndefined
        )

    def message_id(self, event_id: uuid.UUID) -> str:
        return f"<{event_id}@{self.domain}>"

    def ticket_link(self, number: int) -> str:
        return f"{self.public_url}/tickets/{number}"

    def reset_link(self, token: str) -> str:
        return f"{self.public_url}/password/reset?token={quote(token, safe='')}"

    def panel_link(self) -> str:
        return f"{self.public_url}/tickets"

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
    ) -> EmailMessage:
        """The email of `kind` (reply, receipt, welcome, recovery, auto_reply) to `recipient`.

        Raises ValueError when `recipient` is not one valid address.
        """
        lang = language_of(language)
        values = {**context, "public_url": self.public_url, "lang": lang}
        subject_values = {
            k: clean_header_text(str(v)) for k, v in context.items() if not isinstance(v, list)
        }
        message = EmailMessage(policy=POLICY)
        message["From"] = self.sender
        message["To"] = Address(
            display_name=clean_header_text(recipient_name or "", 100), addr_spec=recipient
        )
        message["Subject"] = clean_header_text(SUBJECTS[lang][kind].format(**subject_values), 250)
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = self.message_id(event_id)
        if kind == "auto_reply":
            message["Auto-Submitted"] = "auto-replied"
            if in_reply_to:
                message["In-Reply-To"] = in_reply_to[-1]
                message["References"] = " ".join(in_reply_to)
        else:
            message["Auto-Submitted"] = "auto-generated"
        if correlation_id and _CORRELATION_ID.match(correlation_id):
            message["X-Correlation-ID"] = correlation_id
        message.set_content(self._text.get_template(f"{lang}/{kind}.txt").render(values))
        message.add_alternative(
            self._html.get_template(f"{lang}/{kind}.html").render(values), subtype="html"
        )
        # After the content: set_content drops every Content-* header set before it.
        message["Content-Language"] = lang
        return message
