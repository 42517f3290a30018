"""The whole story over HTTP and SMTP, against the real processes (issue 6)."""

import re
from email.message import EmailMessage

import aiosmtplib
import asyncpg
import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.support.waiting import wait_for

CLIENT_EMAIL = "juana@cliente.example"
NEW_EMAIL = "juana.perez@cliente.example"
FIRST_PASSWORD = "mi primera clave del panel"
RECOVERED_PASSWORD = "mi clave recuperada del panel"


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def link_token(message: EmailMessage, path: str = "/password/reset") -> str:
    match = re.search(re.escape(path) + r"\?token=([\w-]+)", text_of(message))
    assert match, text_of(message)
    return match.group(1)


async def token(suite: Suite, username: str, password: str) -> dict[str, str]:
    status, body = await suite.auth.request(
        "POST", "/v1/token", json={"username": username, "password": password}
    )
    assert status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}"}


async def one_email(suite: Suite, address: str, count: int, what: str) -> EmailMessage:
    """Wait for the `count`-th email to `address` and return it."""
    messages = await wait_for(
        lambda: (found := suite.mailbox.to(address)) and len(found) >= count and found,
        timeout=30,
        message=what,
    )
    return messages[count - 1]


@pytest.mark.slow
async def test_the_whole_story(suite: Suite) -> None:
    auth, (tickets, tickets_2) = suite.auth, suite.tickets
    admin = await token(suite, ADMIN_EMAIL, ADMIN_PASSWORD)

    # The panel is up and speaks the guide's words.
    status, page = await suite.panel.request("GET", "/login")
    assert status == 200 and "Número de cliente" in page

    # An admin creates an operator and a client; the client sets a password from the welcome.
    status, _ = await auth.request(
        "POST",
        "/v1/operators",
        headers=admin,
        json={
            "email": "oscar@story.example",
            "name": "Oscar Operador",
            "role": "operator",
            "password": "the story operator passphrase",
        },
    )
    assert status == 201
    operator = await token(suite, "oscar@story.example", "the story operator passphrase")
    status, client = await auth.request(
        "POST",
        "/v1/clients",
        headers=admin,
        json={
            "name": "Juana Pérez",
            "email": CLIENT_EMAIL,
            "services": [{"name": "Hosting Linux Plus — juana.example"}],
        },
    )
    assert status == 201, client
    number = client["client_number"]
    welcome = await one_email(suite, CLIENT_EMAIL, 1, "the welcome email")
    assert number in text_of(welcome)
    status, _ = await auth.request(
        "POST",
        "/v1/password-reset",
        json={"token": link_token(welcome), "password": FIRST_PASSWORD},
    )
    assert status == 204
    me = await token(suite, number, FIRST_PASSWORD)

    # The client opens a ticket (once tickets knows the client's services) and gets a receipt.
    new_ticket = {
        "service_id": client["services"][0]["id"],
        "category_id": None,
        "body": "El correo no sale desde ayer.",
    }
    status, categories = await tickets.request("GET", "/v1/categories", headers=me)
    assert status == 200, categories
    new_ticket["category_id"] = next(
        c["id"] for c in categories if c["name"] == "Correo electrónico"
    )

    async def opened() -> dict | None:
        status, body = await tickets.request("POST", "/v1/tickets", headers=me, json=new_ticket)
        assert status in (201, 422), body
        return body if status == 201 else None

    ticket = await wait_for(opened, timeout=20, interval=0.2, message="tickets to know the client")
    n = ticket["number"]
    receipt = await one_email(suite, CLIENT_EMAIL, 2, "the receipt")
    assert f"#{n}" in str(receipt["Subject"]) + text_of(receipt)

    # A duplicate is refused, pointing at the open ticket (on the other tickets instance).
    status, problem = await tickets_2.request("POST", "/v1/tickets", headers=me, json=new_ticket)
    assert status == 409 and problem["open_ticket"] == n

    # The client changes email: a link to the new address, a notice to the old one; once the
    # link is used, the operator's answer goes to the new address, with the ticket's link.
    status, _ = await auth.request(
        "POST",
        "/v1/me/email",
        headers=me,
        json={"email": NEW_EMAIL, "current_password": FIRST_PASSWORD},
    )
    assert status == 202
    confirmation = await one_email(suite, NEW_EMAIL, 1, "the email confirmation link")
    notice = await one_email(suite, CLIENT_EMAIL, 3, "the notice to the old address")
    assert NEW_EMAIL in text_of(notice) and "token" not in text_of(notice)
    status, _ = await auth.request(
        "POST",
        "/v1/email-confirmation",
        json={"token": link_token(confirmation, "/email/confirm")},
    )
    assert status == 204
    me = await token(suite, number, FIRST_PASSWORD)

    async def notifier_knows_the_new_email() -> bool:
        # Events of two services reach the notifier independently: the address change must have
        # arrived before the answer is sent for the answer to go there.
        conn = await asyncpg.connect(suite.notifier_database_url)
        try:
            email = await conn.fetchval(
                "SELECT email FROM clients WHERE client_number = $1", number
            )
        finally:
            await conn.close()
        return email == NEW_EMAIL

    await wait_for(notifier_knows_the_new_email, timeout=20, message="the notifier's projection")
    status, _ = await tickets_2.request(
        "POST",
        f"/v1/tickets/{n}/messages",
        headers=operator,
        json={"body": "Hemos reiniciado el servidor de correo: pruebe de nuevo."},
    )
    assert status == 201
    answer = await one_email(suite, NEW_EMAIL, 2, "the operator's answer at the new address")
    assert f"[#{n}]" in str(answer["Subject"]) and "Correo electrónico" in str(answer["Subject"])
    assert "reiniciado el servidor de correo" in text_of(answer)
    assert f"http://panel.story.example/tickets/{n}" in text_of(answer)
    assert answer["Auto-Submitted"] == "auto-generated"

    # The client replies, the operator closes, the client reopens with added text.
    status, _ = await tickets.request(
        "POST", f"/v1/tickets/{n}/messages", headers=me, json={"body": "Sigue sin salir."}
    )
    assert status == 201
    status, closed = await tickets_2.request("POST", f"/v1/tickets/{n}/close", headers=operator)
    assert status == 200 and closed["status"] == "closed"
    status, reopened = await tickets.request(
        "POST", f"/v1/tickets/{n}/reopen", headers=me, json={"body": "Vuelve a fallar hoy."}
    )
    assert status == 200 and reopened["status"] == "open"
    messages_before = len(reopened["messages"])

    # A reply sent by email is answered automatically and never reaches the ticket.
    raw = (
        f"From: Juana <{NEW_EMAIL}>\r\nTo: soporte@helpdesk.example\r\n"
        f"Subject: Re: [#{n}] Correo electrónico\r\nMessage-ID: <reply-1@cliente.example>\r\n"
        "\r\nLes contesto por correo: sigue fallando.\r\n"
    ).encode()
    await aiosmtplib.send(
        raw,
        sender=NEW_EMAIL,
        recipients=["soporte@helpdesk.example"],
        hostname="127.0.0.1",
        port=suite.inbound_ports[0],
    )
    auto = await wait_for(
        lambda: [m for m in suite.mailbox.to(NEW_EMAIL) if m["Auto-Submitted"] == "auto-replied"],
        timeout=30,
        message="the automatic answer",
    )
    assert auto[0]["In-Reply-To"] == "<reply-1@cliente.example>"
    assert f"/tickets/{n}" in text_of(auto[0])
    status, after = await tickets.request("GET", f"/v1/tickets/{n}", headers=operator)
    assert len(after["messages"]) == messages_before
    assert all("Les contesto por correo" not in m["body"] for m in after["messages"])

    # The client recovers access by email.
    status, _ = await auth.request("POST", "/v1/password-recovery", json={"email": NEW_EMAIL})
    assert status == 202
    recovery = await wait_for(
        lambda: [m for m in suite.mailbox.to(NEW_EMAIL) if "/password/reset" in text_of(m)],
        timeout=30,
        message="the recovery email",
    )
    assert number in text_of(recovery[0])
    status, _ = await auth.request(
        "POST",
        "/v1/password-reset",
        json={"token": link_token(recovery[0]), "password": RECOVERED_PASSWORD},
    )
    assert status == 204
    await token(suite, number, RECOVERED_PASSWORD)

    # Two tickets and two notifiers ran the whole time: no email arrived twice.
    ids = [m["Message-ID"] for m in suite.mailbox.all()]
    assert len(ids) == len(set(ids)), ids
    assert len(suite.mailbox.to(CLIENT_EMAIL)) == 3  # welcome, receipt, email-change notice
