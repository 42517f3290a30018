"""An operator's work on a ticket (SPEC 9.2) against the real processes: a note and an
assignment never reach the client, not even in an email; a stale reply is refused."""

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.e2e.test_story import one_email, token
from tests.support.waiting import wait_for

CLIENT_EMAIL = "lucia@cliente.example"
CLIENT_PASSWORD = "la clave de lucia en el panel"
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
            "email": CLIENT_EMAIL,
            "services": [{"name": "Hosting Linux Plus — lucia.example"}],
            "password": CLIENT_PASSWORD,
        },
    )
    assert status == 201, client
    me = await token(suite, client["client_number"], CLIENT_PASSWORD)
    status, categories = await tickets.request("GET", "/v1/categories", headers=me)
    assert status == 200, categories
    new_ticket = {
        "service_id": client["services"][0]["id"],
        "category_id": next(c["id"] for c in categories if c["name"] == "Correo electrónico"),
        "body": "No puedo entrar al webmail desde esta mañana, me dice que la clave es incorrecta.",
    }

    async def opened() -> dict | None:
        status, body = await tickets.request("POST", "/v1/tickets", headers=me, json=new_ticket)
        assert status in (201, 422), body
        return body if status == 201 else None

    ticket = await wait_for(opened, timeout=20, interval=0.2, message="tickets to know the client")
    n, first = ticket["number"], ticket["messages"][0]["id"]
    await one_email(suite, CLIENT_EMAIL, 1, "the receipt")

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
    reply = await one_email(suite, CLIENT_EMAIL, 2, "the answer")
    # Its subject names the query by its first words (the ticket's summary).
    assert f"[#{n}]" in str(reply["Subject"])
    assert "No puedo entrar al webmail" in str(reply["Subject"])
    status, closed = await tickets.request(
        "POST", f"/v1/tickets/{n}/close", headers=operator, json={"if_last_message_id": first}
    )
    assert status == 409, closed
    status, closed = await tickets.request("POST", f"/v1/tickets/{n}/close", headers=operator)
    assert status == 200 and closed["status"] == "closed", closed
    await one_email(suite, CLIENT_EMAIL, 3, "the closing notice")

    # Nothing of the note or the assignment reached the client.
    status, view = await tickets.request("GET", f"/v1/tickets/{n}", headers=me)
    assert status == 200 and "notes" not in view and "assignee" not in view, view
    status, found = await tickets.request("GET", f"/v1/tickets?q={SECRET}", headers=me)
    assert status == 200 and found["items"] == [], found
    for message in suite.mailbox.to(CLIENT_EMAIL):
        assert SECRET not in message.as_string()
        for part in message.walk():
            if part.get_content_maintype() == "text":
                assert SECRET not in part.get_content()
