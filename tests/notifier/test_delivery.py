"""Each email of SPEC §7 arrives once, in the client's language, with the right headers."""

import email as email_parser
import email.policy as email_policy
import string
import uuid

import pytest

from services.notifier import store
from services.notifier.composer import SUBJECT_FIELDS, SUBJECTS, Composer, clean_header_text
from services.notifier.mime import ascii_address
from shared import events
from tests.notifier.conftest import PUBLIC_URL, SENDER, Notifier, Publisher
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_for

SERVICE = events.ServiceRef(id=1, name="Hosting Linux Plus")


def client_created(number: str, email: str, language: str = "es", token: str | None = None):
    return events.ClientCreated(
        client_number=number,
        name="Juana Pérez",
        email=email,
        language=language,
        services=[SERVICE],
        set_password_token=token,
    )


def reply(number: int, client: str, **extra: object) -> events.TicketReplied:
    values = {
        "number": number,
        "client_number": client,
        "subject": "No puedo enviar correos",
        "message_id": 7,
        "author_kind": "operator",
        "author_name": "Oscar Operador",
        "body": "Revise la configuración SMTP, por favor.",
        "channel": "panel",
    }
    return events.TicketReplied.model_validate(values | extra)


def message_id(envelope: events.Envelope) -> str:
    return f"<{envelope.id}@helpdesk.example>"


async def known_client(
    notifier: Notifier, publisher: Publisher, number: str, email: str, language: str = "es"
) -> None:
    await publisher.event(client_created(number, email, language))

    async def projected() -> bool:
        row = await notifier.pool.fetchrow(
            "SELECT email FROM clients WHERE client_number = $1", number
        )
        return row is not None and row["email"] == email

    await wait_for(projected, message="the client projection")


async def test_operator_reply_reaches_the_client_once_with_headers_and_link(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1001", "juana@example.com")
    envelope = await publisher.event(reply(42, "1001"), correlation_id="corr-42")
    await smtp.wait(1, address="juana@example.com")
    [got] = smtp.to("juana@example.com")
    email = got.message
    assert got.mail_from == "soporte@helpdesk.example"
    assert email["Message-ID"] == message_id(envelope)
    assert email["Auto-Submitted"] == "auto-generated"
    assert email["From"] == SENDER
    assert email["X-Correlation-ID"] == "corr-42"
    assert "[#42]" in email["Subject"] and "No puedo enviar correos" in email["Subject"]
    for part in (got.text(), got.html()):
        assert f"{PUBLIC_URL}/tickets/42" in part
        assert "Revise la configuración SMTP" in part
        assert "no serán consideradas" in part

    async def marked() -> bool:
        row = await notifier.email_row(envelope.id)
        return (row["status"], row["attempts"], row["recipient"]) == (
            "sent",
            1,
            "juana@example.com",
        )

    await wait_for(marked, message="the email marked sent once")


async def test_emails_are_in_the_clients_language(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1002", "john@example.com", language="en")
    await publisher.event(reply(43, "1002"))
    await smtp.wait(1, address="john@example.com")
    [got] = smtp.to("john@example.com")
    assert got.message["Content-Language"] == "en"
    assert "replies to tickets sent by email are not considered" in got.text()


async def test_ticket_created_sends_a_receipt_with_the_number(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1003", "ana@example.com")
    created = events.TicketCreated(
        number=77, client_number="1003", subject="Correo", service=SERVICE, body="Hola"
    )
    envelope = await publisher.event(created)
    await smtp.wait(1, address="ana@example.com")
    [got] = smtp.to("ana@example.com")
    assert "[#77]" in got.message["Subject"]
    assert "#77" in got.text() and f"{PUBLIC_URL}/tickets/77" in got.html()
    assert got.message["Message-ID"] == message_id(envelope)


async def test_welcome_has_the_client_number_and_the_set_password_link(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    envelope = await publisher.event(
        client_created("1004", "nuevo@example.com", token="tok-en/1+2")
    )
    await smtp.wait(1, address="nuevo@example.com")
    [got] = smtp.to("nuevo@example.com")
    assert "1004" in got.message["Subject"]
    link = f"{PUBLIC_URL}/password/reset?token=tok-en%2F1%2B2"
    assert "1004" in got.text() and link in got.text()
    assert link in got.html()
    assert got.message["Message-ID"] == message_id(envelope)
    assert got.message["Auto-Submitted"] == "auto-generated"


async def test_client_created_with_a_password_sends_no_welcome(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1010", "conclave@example.com")
    marker = await publisher.event(
        events.PasswordRecoveryRequested(
            client_number="1011", email="marker@example.com", language="es", reset_token="t"
        )
    )
    await smtp.wait(1, address="marker@example.com")
    assert smtp.to("conclave@example.com") == []
    assert smtp.received[-1].message["Message-ID"] == message_id(marker)


async def test_password_recovery_goes_to_the_email_of_the_event(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1005", "vieja@example.com", language="en")
    await publisher.event(
        events.PasswordRecoveryRequested(
            client_number="1005", email="recover@example.com", language="en", reset_token="r1"
        )
    )
    await smtp.wait(1, address="recover@example.com")
    [got] = smtp.to("recover@example.com")
    assert "1005" in got.text()
    assert f"{PUBLIC_URL}/password/reset?token=r1" in got.text()
    assert got.message["Content-Language"] == "en"


async def test_a_reply_after_an_email_change_goes_to_the_new_address(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1006", "antes@example.com")
    await publisher.event(events.ClientUpdated(client_number="1006", email="despues@example.com"))

    async def changed() -> bool:
        row = await notifier.pool.fetchrow("SELECT email FROM clients WHERE client_number='1006'")
        return row["email"] == "despues@example.com"

    await wait_for(changed, message="the email change")
    await publisher.event(reply(44, "1006"))
    await smtp.wait(1, address="despues@example.com")
    assert smtp.to("antes@example.com") == []


async def test_client_replies_send_nothing(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1007", "cli@example.com")
    await publisher.event(reply(45, "1007", author_kind="client", author_name="Juana"))
    marker = await publisher.event(
        events.TicketCreated(
            number=46, client_number="1007", subject="Otro", service=SERVICE, body="x"
        )
    )
    await smtp.wait(1, address="cli@example.com")
    assert [r.message_id for r in smtp.to("cli@example.com")] == [message_id(marker)]


async def test_a_redelivered_event_sends_nothing_twice(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1008", "dup@example.com")
    envelope = events.Envelope.wrap(reply(47, "1008"))
    for _ in range(3):
        await publisher.envelope(envelope)
    marker = await publisher.event(
        events.PasswordRecoveryRequested(
            client_number="1008", email="dup-marker@example.com", language="es", reset_token="t"
        )
    )
    await smtp.wait(1, address="dup-marker@example.com")
    await wait_for(
        lambda: notifier.pool.fetchval("SELECT count(*) = 2 FROM emails WHERE status = 'sent'"),
        message="both emails sent",
    )
    assert len(smtp.with_id(message_id(envelope))) == 1
    assert len(smtp.with_id(message_id(marker))) == 1


async def test_an_email_leased_to_one_delivery_is_left_alone_by_another(
    notifier: Notifier,
) -> None:
    """The attempt's lease is committed before the relay is spoken to: a second delivery of the
    same event (a redelivery while the first is still at the relay) neither sends it nor takes
    it over, and once the first has marked it sent, finds it sent."""
    event_id = uuid.uuid4()
    async with notifier.pool.acquire() as conn:
        first = await store.begin_attempt(conn, event_id, "reply", None, 30)
        assert first is not None and first["previous"] == "pending"
        assert await store.begin_attempt(conn, event_id, "reply", None, 30) is None
        assert await store.email_status(conn, event_id) == "sending"
        await store.mark_sent(conn, event_id, "dup@example.com")
        assert await store.begin_attempt(conn, event_id, "reply", None, 30) is None
        assert await store.email_status(conn, event_id) == "sent"


async def test_a_lease_that_ran_out_is_taken_over_as_an_interrupted_attempt(
    notifier: Notifier,
) -> None:
    """A delivery that died at the relay leaves its lease to run out; the next one sends the
    email, knowing it may be a second copy."""
    event_id = uuid.uuid4()
    async with notifier.pool.acquire() as conn:
        assert await store.begin_attempt(conn, event_id, "reply", None, 0) is not None
        again = await store.begin_attempt(conn, event_id, "reply", None, 30)
        assert again is not None
        assert (again["previous"], again["attempts"]) == ("sending", 2)


async def test_a_reply_from_an_unknown_channel_is_dead_lettered_and_never_sent(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1009", "canal@example.com")
    envelope = await publisher.event(reply(48, "1009", channel="email"))

    async def dead() -> list:
        rows = await notifier.dead_letters()
        return [r for r in rows if r["event_id"] == envelope.id]

    [row] = await wait_for(dead, message="the dead letter")
    assert "channel" in row["reason"]
    assert smtp.to("canal@example.com") == []
    assert await notifier.email_row(envelope.id) is None


def test_no_user_text_can_add_a_header() -> None:
    composer = Composer(sender=SENDER, public_url=PUBLIC_URL)
    event_id = uuid.uuid4()
    data = composer.compose(
        "reply",
        {
            "number": 1,
            "subject": "Hola\r\nBcc: victim@example.com\nX-Evil: 1",
            "body": "Texto\r\nX-Injected: yes",
            "author_name": "Op\r\nTo: x@example.com",
            "name": "<script>alert(1)</script>",
            "link": "https://x",
        },
        event_id=event_id,
        recipient="a@example.com",
        recipient_name="Ana\r\nCc: b@example.com",
        language="es",
    )
    email = email_parser.message_from_bytes(data, policy=email_policy.default)
    assert email.defects == [] and all(part.defects == [] for part in email.walk())
    for header in ("Bcc", "X-Evil", "X-Injected", "Cc"):
        assert header not in email
    assert email["To"].addresses[0].addr_spec == "a@example.com"
    assert "\n" not in str(email["Subject"])
    html = email.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert email["Message-ID"] == f"<{event_id}@helpdesk.example>"


def test_every_language_s_subjects_use_the_fields_that_are_cleaned_for_them() -> None:
    for subjects in SUBJECTS.values():
        for kind, subject in subjects.items():
            fields = {f for _, f, _, _ in string.Formatter().parse(subject) if f}
            assert fields == SUBJECT_FIELDS[kind], kind


def test_long_and_non_ascii_headers_are_encoded_and_folded() -> None:
    composer = Composer(sender=SENDER, public_url=PUBLIC_URL)
    data = composer.compose(
        "auto_reply",
        {"ticket_number": 5, "subject": "Ñandú =?utf-8?q?x?= " * 20, "link": "https://x"},
        event_id=uuid.uuid4(),
        recipient="juana@ejémplo.example",
        recipient_name="Juana Núñez " * 8,
        language="es",
        in_reply_to=["<a@example.com>", "<b@example.com>"],
    )

    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"To:"))
    email = email_parser.message_from_bytes(data, policy=email_policy.default)
    assert email.defects == []
    subject = clean_header_text("Re: " + clean_header_text("Ñandú =?utf-8?q?x?= " * 20), 250)
    assert email["Subject"] == subject
    assert email["To"].addresses[0].addr_spec == "juana@xn--ejmplo-cva.example"
    assert email["References"] == "<a@example.com> <b@example.com>"
    assert email["In-Reply-To"] == "<b@example.com>"
    assert email.get_body(("plain",)).get_content().startswith("No responda a este correo")


def test_an_address_with_a_non_ascii_local_part_is_refused() -> None:
    composer = Composer(sender=SENDER, public_url=PUBLIC_URL)
    with pytest.raises(ValueError):
        composer.compose(
            "recovery",
            {"client_number": "1", "link": "https://x"},
            event_id=uuid.uuid4(),
            recipient="josé@example.com",
            language="es",
        )


def test_a_quoted_local_part_stays_quoted() -> None:
    # An automatic answer goes to whoever wrote in, and RFC 5321 allows "john doe"@host.
    composer = Composer(sender=SENDER, public_url=PUBLIC_URL)
    data = composer.compose(
        "recovery",
        {"client_number": "1", "link": "https://x"},
        event_id=uuid.uuid4(),
        recipient='"john doe"@example.com',
        language="es",
    )
    assert b'\r\nTo: "john doe"@example.com\r\n' in data
    assert ascii_address('"john doe"@example.com') == '"john doe"@example.com'  # RCPT TO


async def test_email_change_sends_the_link_to_the_new_address_only(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1020", "vieja@example.com", language="en")
    common = {"client_number": "1020", "name": "Juana Pérez", "new_email": "nueva@example.com"}
    confirm = await publisher.event(
        events.EmailChangeRequested(**common, language="en", confirm_token="c/1+2")
    )
    notice = await publisher.event(
        events.EmailChangeNotice(**common, email="vieja@example.com", language="en")
    )
    await smtp.wait(1, address="nueva@example.com")
    await smtp.wait(1, address="vieja@example.com")
    [link_email] = smtp.to("nueva@example.com")
    link = f"{PUBLIC_URL}/email/confirm?token=c%2F1%2B2"
    assert link in link_email.text() and link in link_email.html()
    assert link_email.message["Subject"] == "Confirm your new Client Panel email"
    assert link_email.message["Message-ID"] == message_id(confirm)
    assert link_email.message["Content-Language"] == "en"

    [old] = smtp.to("vieja@example.com")
    assert old.message["Message-ID"] == message_id(notice)
    assert "1020" in old.message["Subject"]
    assert "nueva@example.com" in old.text() and "nueva@example.com" in old.html()
    # The notice carries no link: whoever reads the old mailbox has nothing to follow.
    assert "http" not in old.text() and "token" not in old.text() and "href" not in old.html()


async def test_email_change_emails_are_in_spanish_by_default(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    common = {"client_number": "1021", "name": "Juan", "new_email": "nuevo@example.com"}
    await publisher.event(events.EmailChangeRequested(**common, language="es", confirm_token="t"))
    await publisher.event(
        events.EmailChangeNotice(**common, email="viejo@example.com", language="es")
    )
    await smtp.wait(1, address="nuevo@example.com")
    await smtp.wait(1, address="viejo@example.com")
    [new] = smtp.to("nuevo@example.com")
    [old] = smtp.to("viejo@example.com")
    assert new.message["Subject"] == "Confirme su nuevo email del Panel de Clientes"
    assert new.text().startswith("Hola Juan")
    assert old.message["Subject"].startswith("Pedido de cambio del email")


async def test_an_admin_renaming_a_client_reaches_the_projection(
    notifier: Notifier, publisher: Publisher, smtp: SmtpSink
) -> None:
    await known_client(notifier, publisher, "1022", "renombrada@example.com")
    await publisher.event(events.ClientUpdated(client_number="1022", name="Juana Gómez"))

    async def renamed() -> bool:
        row = await notifier.pool.fetchrow("SELECT name FROM clients WHERE client_number='1022'")
        return row is not None and row["name"] == "Juana Gómez"

    await wait_for(renamed, message="the new name in the projection")
