"""Emails a client can act on: subjects that say what happened, "do not reply" at the top, a
button to the ticket, their own words quoted, attachments named (never attached), and a notice
when an operator or the system closes the ticket."""

import re
import uuid

import aiosmtplib
import pytest

from services.notifier.delivery import EVENTS, email_kind
from shared import events
from tests.notifier.conftest import PUBLIC_URL, Notifier, Publisher
from tests.notifier.test_delivery import known_client, reply
from tests.support.smtp import Received, SmtpSink
from tests.support.waiting import wait_for

SERVICE = events.ServiceRef(id=1, name="Hosting Linux Plus")
NO_REPLY = {"es": "No responda a este correo", "en": "Do not reply to this email"}
# An <a> styled as a button (inline styles only) to the ticket.
BUTTON = re.compile(r'<a href="([^"]+)" style="display: inline-block;[^"]*background-color: #')


def closed(number: int, client: str, closed_by: str, **extra: object) -> events.TicketClosed:
    values = {"number": number, "client_number": client, "closed_by": closed_by}
    values |= {"subject": "Correo electrónico", "summary": "No puedo entrar…"}
    return events.TicketClosed.model_validate(values | extra)


def attachment(name: str, size: int) -> events.AttachmentRef:
    return events.AttachmentRef(id=uuid.uuid4(), name=name, size=size, content_type="image/png")


def one_email(smtp: SmtpSink, address: str) -> Received:
    [got] = smtp.to(address)
    return got


def assert_actionable(got: Received, language: str, number: int) -> None:
    """'Do not reply' first, the plain link, and a button to the ticket."""
    link = f"{PUBLIC_URL}/tickets/{number}"
    assert got.text().startswith(NO_REPLY[language])
    assert link in got.text()
    html = got.html()
    body = html[html.index("<body") :]
    assert re.sub(r"<[^>]+>", "", body).strip().startswith(NO_REPLY[language])
    assert BUTTON.search(html) and BUTTON.search(html).group(1) == link
    assert f'<a href="{link}">{link}</a>' in html


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("es", "[#12] Respuesta a su consulta: Correo electrónico — No puedo entrar…"),
        ("en", "[#12] Reply to your query: Correo electrónico — No puedo entrar…"),
    ],
)
async def test_the_reply_subject_says_what_happened_and_which_ticket(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink, language: str, subject: str
) -> None:
    await known_client(notifier, publisher, "4001", "juana@example.com", language)
    answer = reply(12, "4001", subject="Correo electrónico", summary="No puedo entrar…")
    await publisher.event(answer)
    await smtp.wait(1, address="juana@example.com")
    got = one_email(smtp, "juana@example.com")
    assert got.message["Subject"] == subject
    assert_actionable(got, language, 12)
    assert "Revise la configuración SMTP" in got.text()


async def test_a_reply_without_summary_has_no_dash_part(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "4002", "juana@example.com")
    await publisher.event(reply(12, "4002", subject="Correo electrónico"))
    await smtp.wait(1, address="juana@example.com")
    subject = one_email(smtp, "juana@example.com").message["Subject"]
    assert subject == "[#12] Respuesta a su consulta: Correo electrónico"


@pytest.mark.parametrize(
    ("language", "prefix", "heading"),
    [
        ("es", "[#12] Recibimos su consulta: Correo electrónico — ", "Su consulta:"),
        ("en", "[#12] We received your query: Correo electrónico — ", "Your query:"),
    ],
)
async def test_the_receipt_quotes_the_query_escaped_and_bounded(
    notifier: Notifier,
    publisher: Publisher,
    smtp: SmtpSink,
    language: str,
    prefix: str,
    heading: str,
) -> None:
    await known_client(notifier, publisher, "4003", "ana@example.com", language)
    query = "No puedo entrar a mi casilla <script>alert(1)</script> desde ayer.\nGracias."
    long_query = query + "\n" + "relleno " * 1000
    created = events.TicketCreated(
        number=12,
        client_number="4003",
        subject="Correo electrónico",
        service=SERVICE,
        body=long_query,
    )
    await publisher.event(created)
    await smtp.wait(1, address="ana@example.com")
    got = one_email(smtp, "ana@example.com")
    subject = str(got.message["Subject"])
    assert subject.startswith(prefix + "No puedo entrar a mi casilla") and subject.endswith("…")
    assert len(subject) < len(prefix) + 70
    assert_actionable(got, language, 12)
    text, html = got.text().replace("\r\n", "\n"), got.html()
    assert heading in text and query in text
    assert "relleno " * 200 in text and "relleno " * 300 not in text  # bounded (2,000 chars)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("closed_by", "language", "words"),
    [
        ("operator", "es", ["Oscar Operador cerró su consulta #12", "reabrir"]),
        ("system", "es", ["Cerramos automáticamente su consulta #12", "reabrir"]),
        ("operator", "en", ["Oscar Operador closed your query #12", "reopen"]),
        ("system", "en", ["We closed your query #12", "automatically", "reopen"]),
    ],
)
async def test_the_client_is_told_when_an_operator_or_the_system_closes_the_ticket(
    notifier: Notifier,
    publisher: Publisher,
    smtp: SmtpSink,
    closed_by: str,
    language: str,
    words: list[str],
) -> None:
    await known_client(notifier, publisher, "4004", "juana@example.com", language)
    await publisher.event(closed(12, "4004", closed_by, closed_by_name="Oscar Operador"))
    await smtp.wait(1, address="juana@example.com")
    got = one_email(smtp, "juana@example.com")
    assert_actionable(got, language, 12)
    subject = {"es": "Consulta cerrada", "en": "Query closed"}[language]
    assert got.message["Subject"] == f"[#12] {subject}: Correo electrónico — No puedo entrar…"
    for part in (got.text(), got.html()):
        for word in words:
            assert word in part
        assert not re.search(r"\d+ (días|days)", part)  # the period is not in the event


async def test_a_client_close_and_an_internal_note_send_nothing(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "4005", "juana@example.com")
    by_client = await publisher.event(closed(12, "4005", "client"))
    note = events.TicketNoted(number=12, client_number="4005", note_id=1, author_name="Oscar")
    await publisher.event(note)
    # Published after them on the same queue: once it is sent, they were handled.
    later = await publisher.event(closed(13, "4005", "system"))
    await smtp.wait(1, address="juana@example.com")
    await wait_for(
        lambda: notifier.pool.fetchval("SELECT count(*) = 1 FROM emails WHERE status = 'sent'"),
        message="the later notice recorded",
    )
    assert [r.message_id for r in smtp.received] == [f"<{later.id}@helpdesk.example>"]
    assert await notifier.email_row(by_client.id) is None
    assert await notifier.pool.fetchval("SELECT count(*) FROM emails") == 1
    # A note is not even bound to the notifier's queue.
    assert events.TicketNoted.routing_key not in EVENTS.routing_keys
    assert email_kind(note) is None and email_kind(closed(1, "1", "client")) is None


@pytest.mark.parametrize("kind", ["reply", "receipt"])
async def test_attachments_are_named_with_a_panel_link_and_never_attached(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink, kind: str
) -> None:
    await known_client(notifier, publisher, "4006", "juana@example.com")
    files = [attachment("captura <1>.png", 153_600), attachment("log.txt", 512)]
    if kind == "reply":
        data: events.EventData = reply(12, "4006", attachments=files)
    else:
        data = events.TicketCreated(
            number=12,
            client_number="4006",
            subject="Correo",
            service=SERVICE,
            body="Adjunto captura.",
            attachments=files,
        )
    await publisher.event(data)
    await smtp.wait(1, address="juana@example.com")
    got = one_email(smtp, "juana@example.com")
    text, html = got.text(), got.html()
    for file, size in zip(files, ("150,0 KB", "512 B"), strict=True):
        link = f"{PUBLIC_URL}/tickets/12/attachments/{file.id}"
        assert f"- {file.name} ({size}): {link}" in text
        assert f'<a href="{link}">' in html
    assert "captura &lt;1&gt;.png" in html and "<1>.png" not in html
    parts = [(p.get_content_type(), p.get_content_disposition()) for p in got.message.walk()]
    assert parts == [
        ("multipart/alternative", None),
        ("text/plain", None),
        ("text/html", None),
    ]


def inbound_mail(body: bytes, headers: str = "") -> bytes:
    return (
        "From: Juana <juana@example.com>\r\nTo: soporte@helpdesk.example\r\n"
        "Subject: Re: [#12] Correo\r\nMessage-ID: <orig-9@mail.example.com>\r\n"
        f"{headers}\r\n"
    ).encode() + body


async def send_inbound(notifier: Notifier, sender: str, raw: bytes) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=notifier.inbound_port) as client:
        await client.sendmail(sender, ["soporte@helpdesk.example"], raw)


async def test_the_automatic_answer_quotes_the_text_the_client_sent(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "4007", "juana@example.com")
    body = (
        b"--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Sigue sin funcionar la recepci=F3n.\r\n<b>Gracias</b>\x1b[31m\r\n"
        b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Sigue sin funcionar</p><script>x()</script>\r\n--b1--\r\n"
    )
    headers = 'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b1"\r\n'
    await send_inbound(notifier, "juana@example.com", inbound_mail(body, headers))
    await smtp.wait(1, address="juana@example.com")
    got = one_email(smtp, "juana@example.com")
    assert got.message["Auto-Submitted"] == "auto-replied"
    text, html = got.text(), got.html()
    assert text.startswith(NO_REPLY["es"])
    assert "Sigue sin funcionar la recepción.\n<b>Gracias</b>" in text.replace("\r\n", "\n")
    assert "\x1b" not in text and "\x1b" not in html
    assert "&lt;b&gt;Gracias&lt;/b&gt;" in html and "<b>Gracias" not in html
    assert "<script>" not in html
    assert BUTTON.search(html).group(1) == f"{PUBLIC_URL}/tickets/12"


async def test_the_automatic_answer_to_a_stranger_quotes_nothing(
    notifier: Notifier, smtp: SmtpSink
) -> None:
    raw = inbound_mail(b"Compre ahora: https://spam.example\r\n")
    await send_inbound(notifier, "stranger@example.com", raw.replace(b"juana@", b"stranger@"))
    await smtp.wait(1, address="stranger@example.com")
    got = one_email(smtp, "stranger@example.com")
    assert "spam.example" not in got.text() and "spam.example" not in got.html()
