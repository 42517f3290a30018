"""Inbound mail: accepted, never applied, answered once (RFC 3834) when answering is allowed."""

import aiosmtplib
import pytest

from services.notifier import store
from services.notifier.app import INBOUND_KEPT_DAYS
from services.notifier.inbound import AutoReplyRequested
from tests.notifier.conftest import PUBLIC_URL, Notifier, StartNotifier
from tests.support.events import EventTap
from tests.support.smtp import SmtpSink

INBOX = "soporte@helpdesk.example"
AUTO = AutoReplyRequested.routing_key
REJECTED = "notifier.email.rejected"


def mail(
    subject: str = "Re: [#42] No puedo enviar correos",
    message_id: str = "<orig-1@mail.example.com>",
    extra: str = "",
    sender: str = "juana@example.com",
) -> bytes:
    return (
        f"From: Juana <{sender}>\r\nTo: {INBOX}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nReferences: <first@helpdesk.example>\r\n{extra}"
        "\r\nGracias, pero sigue sin funcionar.\r\n"
    ).encode()


async def send(notifier: Notifier, sender: str, raw: bytes) -> aiosmtplib.SMTPResponse:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=notifier.inbound_port) as client:
        _, response = await client.sendmail(sender, [INBOX], raw)
    return response


async def test_a_reply_by_email_changes_no_ticket_and_gets_one_automatic_answer(
    notifier: Notifier, smtp: SmtpSink, tap: EventTap
) -> None:
    response = await send(notifier, "juana@example.com", mail())
    assert response.startswith("2.0.0") or "Accepted" in response
    [rejected] = await tap.wait(REJECTED)
    assert rejected["data"] == {
        "from": "juana@example.com",
        "ticket_number": 42,
        "reason": "replies_by_email_not_considered",
    }
    await smtp.wait(1, address="juana@example.com")
    [got] = smtp.to("juana@example.com")
    answer = got.message
    assert got.mail_from in ("", "<>")  # RFC 3834 §3.3: from the null sender
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer["In-Reply-To"] == "<orig-1@mail.example.com>"
    assert answer["References"] == "<first@helpdesk.example> <orig-1@mail.example.com>"
    assert answer["Subject"] == "Re: [#42] No puedo enviar correos"
    assert answer["From"] == "Soporte <soporte@helpdesk.example>"
    assert f"{PUBLIC_URL}/tickets/42" in got.text()
    assert "no serán consideradas" in got.text()
    assert [m.routing_key for m in tap.messages if m.routing_key.startswith("tickets.")] == []
    [auto] = tap.bodies(AUTO)
    assert answer["Message-ID"] == f"<{auto['id']}@helpdesk.example>"


@pytest.mark.parametrize(
    ("sender", "extra"),
    [
        ("", ""),
        ("juana@example.com", "Auto-Submitted: auto-replied\r\n"),
        ("juana@example.com", "Auto-Submitted: auto-generated\r\n"),
        ("juana@example.com", "Precedence: bulk\r\n"),
        ("juana@example.com", "Precedence: list\r\n"),
        ("juana@example.com", "Precedence: junk\r\n"),
        ("juana@example.com", "List-Id: <clientes.example.com>\r\n"),
    ],
    ids=["null-sender", "auto-replied", "auto-generated", "bulk", "list", "junk", "list-id"],
)
async def test_no_automatic_answer_when_rfc_3834_forbids_it(
    notifier: Notifier, smtp: SmtpSink, tap: EventTap, sender: str, extra: str
) -> None:
    await send(notifier, sender, mail(extra=extra))
    await tap.wait(REJECTED)
    row = await notifier.pool.fetchrow("SELECT answered, reason FROM inbound_messages")
    assert row["answered"] is False, row["reason"]
    assert tap.bodies(AUTO) == []
    # A later allowed message from another sender is answered: the pipeline was working.
    await send(notifier, "otro@example.com", mail(sender="otro@example.com"))
    await smtp.wait(1, address="otro@example.com")
    assert [r.rcpt_tos for r in smtp.received] == [["otro@example.com"]]


async def test_auto_submitted_no_is_answered(
    notifier: Notifier, smtp: SmtpSink, tap: EventTap
) -> None:
    await send(notifier, "juana@example.com", mail(extra="Auto-Submitted: no\r\n"))
    await smtp.wait(1, address="juana@example.com")


async def test_one_answer_per_sender_and_ticket_within_seven_days(
    notifier: Notifier, smtp: SmtpSink, tap: EventTap
) -> None:
    for subject in (
        "Re: [#42] Hola",
        "Re: [#42] Hola otra vez",
        "Re: [#43] Otro ticket",
        "Sin ticket",
        "Tampoco",
    ):
        await send(notifier, "Juana@Example.com", mail(subject=subject))
    await tap.wait(REJECTED, 5)
    autos = await tap.wait(AUTO, 3)
    assert sorted(a["data"].get("ticket_number") or 0 for a in autos) == [0, 42, 43]
    await smtp.wait(3, address="Juana@Example.com")
    subjects = sorted(r.message["Subject"] for r in smtp.received)
    assert subjects == ["Re: Sin ticket", "Re: [#42] Hola", "Re: [#43] Otro ticket"]
    no_ticket = next(r for r in smtp.received if r.message["Subject"] == "Re: Sin ticket")
    assert f"{PUBLIC_URL}/tickets\n" in no_ticket.text() or f"{PUBLIC_URL}/tickets" in (
        no_ticket.text()
    )
    # Past the window, the sender is answered again.
    await notifier.pool.execute("UPDATE auto_replies SET sent_at = now() - interval '8 days'")
    await send(notifier, "juana@example.com", mail(subject="Re: [#42] Una semana después"))
    await smtp.wait(4, timeout=10)


async def test_a_header_injection_in_the_subject_is_not_copied_into_the_answer(
    notifier: Notifier, smtp: SmtpSink
) -> None:
    raw = mail(
        subject="=?utf-8?q?Hola=0D=0ABcc=3A_victima=40example=2Ecom?=",
        message_id="<a@b>\r\n X-Evil: 1",
    )
    await send(notifier, "juana@example.com", raw)
    await smtp.wait(1, address="juana@example.com")
    [got] = smtp.received
    assert got.rcpt_tos == ["juana@example.com"]
    assert "Bcc" not in got.message and "X-Evil" not in got.message
    assert got.message["Subject"] == "Re: Hola Bcc: victima@example.com"
    assert b"\r\nBcc:" not in got.raw


async def test_malformed_input_is_refused_cleanly(
    start_notifier: StartNotifier, smtp: SmtpSink, tap: EventTap
) -> None:
    notifier = await start_notifier(inbound_max_bytes=4096)
    port = notifier.inbound_port
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
        code, _ = await client.execute_command(b"MAIL FROM:<not an address>")
        assert code == 553
        code, _ = await client.execute_command(b"RCPT TO:<x@example.com>")
        assert code == 503  # no sender yet
        code, _ = await client.execute_command(b"BOGUS command")
        assert 500 <= code < 600
        with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
            await client.sendmail("juana@example.com", [INBOX], mail(extra="X: " + "a" * 9000))
        assert too_big.value.code == 552
    # No headers at all, binary junk: accepted, recorded, not answered, and no crash.
    await send(notifier, "juana@example.com", b"\x00\xff\xfe garbage without any header\r\n")
    await tap.wait(REJECTED)
    # The listener still works.
    await send(notifier, "otro@example.com", mail(sender="otro@example.com"))
    await smtp.wait(1, address="otro@example.com")
    assert await notifier.pool.fetchval("SELECT count(*) FROM inbound_messages") == 2


async def test_a_sender_naming_ever_new_tickets_is_answered_at_most_five_times(
    notifier: Notifier, smtp: SmtpSink, tap: EventTap
) -> None:
    # A forged sender cannot make us spam an address by changing the [#N] of the subject.
    for n in range(1, 8):
        await send(notifier, "victim@example.com", mail(subject=f"Re: [#{n}] Hola"))
    await tap.wait(REJECTED, 7)
    await smtp.wait(5, address="victim@example.com")
    autos = await tap.wait(AUTO, 5)
    assert len(autos) == 5
    rows = await notifier.pool.fetch("SELECT reason FROM inbound_messages ORDER BY id")
    assert [r["reason"] for r in rows].count("answered") == 5


async def test_a_null_sender_is_reported_by_the_from_header(
    notifier: Notifier, smtp: SmtpSink, tap: EventTap
) -> None:
    await send(notifier, "", mail(sender="bounce@example.com"))
    [rejected] = await tap.wait(REJECTED)
    assert rejected["data"]["from"] == "bounce@example.com"
    assert tap.bodies(AUTO) == []


async def test_inbound_records_are_purged_after_30_days(notifier: Notifier, smtp: SmtpSink) -> None:
    for sender in ("old@example.com", "new@example.com"):
        await send(notifier, sender, mail(sender=sender))
        await smtp.wait(1, address=sender)
    await notifier.pool.execute(
        "UPDATE inbound_messages SET received_at = now() - interval '31 days'"
        " WHERE mail_from = 'old@example.com'"
    )
    await notifier.pool.execute(
        "UPDATE auto_replies SET sent_at = now() - interval '31 days'"
        " WHERE sender = 'old@example.com'"
    )
    async with notifier.pool.acquire() as conn:
        assert await store.purge_inbound(conn, INBOUND_KEPT_DAYS * 86_400) == 2
    senders = await notifier.pool.fetch("SELECT mail_from FROM inbound_messages")
    assert [r["mail_from"] for r in senders] == ["new@example.com"]
    replies = await notifier.pool.fetch("SELECT sender FROM auto_replies")
    assert [r["sender"] for r in replies] == ["new@example.com"]
