"""The stories over HTTP and SMTP against the real processes, on one running suite (two tickets,
two notifiers, auth, the panel, the SMTP sink), each with accounts of its own: the whole story of
issue 6; attachments (SPEC 9.2): uploaded to one tickets instance and attached on the other,
downloaded as files, never pages, named in the receipt with a panel link and never attached; an
operator's work (SPEC 9.2): a note and an assignment never reach the client, not even in an
email, and a stale reply is refused. (Auto-close needs settings of its own: test_auto_close.py.)"""

import re
from email.message import EmailMessage

import aiohttp
import aiosmtplib
import asyncpg
import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.support.files import form, pdf, png, svg_with_script
from tests.support.tickets_api import open_when_known
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

    ticket = await open_when_known(tickets, me, new_ticket)
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


# --- attachments ------------------------------------------------------------------------------

MARTA_EMAIL = "marta@cliente.example"
MARTA_PASSWORD = "la clave de marta en el panel"
FILES = {"captura.png": png(), "factura.pdf": pdf(), "x.svg": svg_with_script()}
SERVED = {"captura.png": "image/png", "factura.pdf": "application/pdf"}


async def new_client_with_password(
    suite: Suite, admin: dict[str, str], name: str, email: str
) -> dict:
    status, client = await suite.auth.request(
        "POST",
        "/v1/clients",
        headers=admin,
        json={
            "name": name,
            "email": email,
            "services": [{"name": f"Hosting de {name}"}],
            "password": MARTA_PASSWORD,
        },
    )
    assert status == 201, client
    client["headers"] = await token(suite, client["client_number"], MARTA_PASSWORD)
    return client


@pytest.mark.slow
async def test_files_are_attached_downloaded_as_files_and_named_in_the_receipt(
    suite: Suite,
) -> None:
    tickets, tickets_2 = suite.tickets
    admin = await token(suite, ADMIN_EMAIL, ADMIN_PASSWORD)
    marta = await new_client_with_password(suite, admin, "Marta Ruiz", MARTA_EMAIL)
    other = await new_client_with_password(suite, admin, "Otro Cliente", "otro@cliente.example")
    me = marta["headers"]

    uploaded = []
    for name, data in FILES.items():
        status, body = await tickets.request(
            "POST", "/v1/attachments", headers=me, data=form(data, name)
        )
        assert status == 201, body
        uploaded.append(body)
    assert [f["content_type"] for f in uploaded] == [
        "image/png",
        "application/pdf",
        "application/octet-stream",  # an SVG can run scripts: a file to save, never an image
    ]
    status, categories = await tickets_2.request("GET", "/v1/categories", headers=me)
    assert status == 200, categories
    new_ticket = {
        "service_id": marta["services"][0]["id"],
        "category_id": next(c["id"] for c in categories if c["name"] == "Correo electrónico"),
        "body": "Adjunto captura, factura y el logo que no se ve.",
        "attachment_ids": [f["id"] for f in uploaded],
    }

    # Uploaded to one instance, attached on the other: the files are in the database.
    ticket = await open_when_known(tickets_2, me, new_ticket, message="tickets to know Marta")
    n = ticket["number"]
    assert ticket["messages"][0]["attachments"] == uploaded

    async with aiohttp.ClientSession() as session:
        for f in uploaded:
            url = f"{tickets_2.url}/v1/tickets/{n}/attachments/{f['id']}"
            async with session.get(url, headers=admin) as response:  # staff downloads
                assert response.status == 200
                assert await response.read() == FILES[f["name"]]
                assert response.headers["Content-Type"] == SERVED.get(
                    f["name"], "application/octet-stream"
                )
                assert response.headers["Content-Disposition"].startswith("attachment;")
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Content-Security-Policy"] == "sandbox"
            async with session.get(url, headers=other["headers"]) as response:
                assert response.status == 404

    receipt = text_of(await one_email(suite, MARTA_EMAIL, 1, "the receipt"))
    for f in uploaded:
        assert f["name"] in receipt
        assert f"/tickets/{n}/attachments/{f['id']}" in receipt
    message = await one_email(suite, MARTA_EMAIL, 1, "the receipt")
    assert not list(message.iter_attachments())

    status, problem = await tickets.request(
        "POST", "/v1/attachments", headers=me, data=form(b"\0" * (11 * 1024 * 1024), "big.bin")
    )
    assert status == 413, problem


# --- an operator's work ----------------------------------------------------------------------

LUCIA_EMAIL = "lucia@cliente.example"
LUCIA_PASSWORD = "la clave de lucia en el panel"
OPERATOR = ("olga@story.example", "the operator olga passphrase")
SECRET = "zanahoria"  # a word of the note only


@pytest.mark.slow
async def test_notes_and_assignment_stay_with_operators_and_stale_replies_are_refused(
    suite: Suite,
) -> None:
    auth, (tickets, tickets_2) = suite.auth, suite.tickets
    admin = await token(suite, ADMIN_EMAIL, ADMIN_PASSWORD)
    status, olga = await auth.request(
        "POST",
        "/v1/operators",
        headers=admin,
        json={"email": OPERATOR[0], "name": "Olga", "role": "operator", "password": OPERATOR[1]},
    )
    assert status == 201, olga
    operator = await token(suite, *OPERATOR)
    status, client = await auth.request(
        "POST",
        "/v1/clients",
        headers=admin,
        json={
            "name": "Lucía Gómez",
            "email": LUCIA_EMAIL,
            "services": [{"name": "Hosting Linux Plus — lucia.example"}],
            "password": LUCIA_PASSWORD,
        },
    )
    assert status == 201, client
    me = await token(suite, client["client_number"], LUCIA_PASSWORD)
    status, categories = await tickets.request("GET", "/v1/categories", headers=me)
    assert status == 200, categories
    new_ticket = {
        "service_id": client["services"][0]["id"],
        "category_id": next(c["id"] for c in categories if c["name"] == "Correo electrónico"),
        "body": "No puedo entrar al webmail desde esta mañana, me dice que la clave es incorrecta.",
    }

    ticket = await open_when_known(tickets, me, new_ticket)
    n, first = ticket["number"], ticket["messages"][0]["id"]
    await one_email(suite, LUCIA_EMAIL, 1, "the receipt")

    # "Asignar a mí" for an operator created a moment ago, then a note, on either instance.
    status, assigned = await tickets_2.request(
        "POST", f"/v1/tickets/{n}/assign", headers=operator, json={"operator_id": olga["id"]}
    )
    assert status == 200, assigned
    assert assigned["assignee"] == {"id": olga["id"], "name": "Olga"}
    status, note = await tickets.request(
        "POST", f"/v1/tickets/{n}/notes", headers=operator, json={"body": f"Clave: {SECRET}."}
    )
    assert status == 201, note

    # The client adds to the ticket while the operator writes: the operator's reply is refused
    # until they have read it.
    status, newer = await tickets.request(
        "POST", f"/v1/tickets/{n}/messages", headers=me, json={"body": "Ya probé a cambiarla."}
    )
    assert status == 201, newer
    answer = {"body": "Le hemos restablecido el acceso.", "if_last_message_id": first}
    status, problem = await tickets_2.request(
        "POST", f"/v1/tickets/{n}/messages", headers=operator, json=answer
    )
    assert status == 409 and problem["last_message_id"] == newer["id"], problem
    answer["if_last_message_id"] = newer["id"]
    status, _ = await tickets_2.request(
        "POST", f"/v1/tickets/{n}/messages", headers=operator, json=answer
    )
    assert status == 201
    reply = await one_email(suite, LUCIA_EMAIL, 2, "the answer")
    # Its subject names the query by its first words (the ticket's summary).
    assert f"[#{n}]" in str(reply["Subject"])
    assert "No puedo entrar al webmail" in str(reply["Subject"])
    status, closed = await tickets.request(
        "POST", f"/v1/tickets/{n}/close", headers=operator, json={"if_last_message_id": first}
    )
    assert status == 409, closed
    status, closed = await tickets.request("POST", f"/v1/tickets/{n}/close", headers=operator)
    assert status == 200 and closed["status"] == "closed", closed
    await one_email(suite, LUCIA_EMAIL, 3, "the closing notice")

    # Nothing of the note or the assignment reached the client.
    status, view = await tickets.request("GET", f"/v1/tickets/{n}", headers=me)
    assert status == 200 and "notes" not in view and "assignee" not in view, view
    status, found = await tickets.request("GET", f"/v1/tickets?q={SECRET}", headers=me)
    assert status == 200 and found["items"] == [], found
    for message in suite.mailbox.to(LUCIA_EMAIL):
        assert SECRET not in message.as_string()
        for part in message.walk():
            if part.get_content_maintype() == "text":
                assert SECRET not in part.get_content()
