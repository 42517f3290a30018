"""Auto-close and delivery status (SPEC 9.2, 9.3) against the real processes, two tickets and two
notifiers: an answered ticket closes itself once and the client gets one notice saying how to
reopen it; a ticket the client wrote in after the operator stays open; an operator's close is
told to the client too; the operator sees each email of a ticket delivered."""

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.e2e.test_story import text_of, token
from tests.support.tickets_api import open_when_known
from tests.support.waiting import wait_for

CLIENT_EMAIL = "rosa@cliente.example"
CLIENT_PASSWORD = "la clave de rosa en el panel"
# Answered tickets close themselves after two seconds without a client message.
AUTO_CLOSE_SECONDS = 2


@pytest.fixture(scope="module")
def suite_env() -> dict[str, str]:
    return {
        "TICKETS_AUTO_CLOSE_DAYS": str(AUTO_CLOSE_SECONDS / 86400),
        "TICKETS_AUTO_CLOSE_INTERVAL_SECONDS": "0.5",
    }


def notices(suite: Suite, number: int) -> list:
    """The closing notices the client received about ticket `number`."""
    return [
        m
        for m in suite.mailbox.to(CLIENT_EMAIL)
        if f"[#{number}]" in str(m["Subject"]) and "cerr" in str(m["Subject"]).lower()
    ]


@pytest.mark.slow
async def test_answered_tickets_close_once_and_the_client_is_told(suite: Suite) -> None:
    auth, (tickets, tickets_2), notifier = suite.auth, suite.tickets, suite.notifiers[1]
    admin = await token(suite, ADMIN_EMAIL, ADMIN_PASSWORD)
    status, client = await auth.request(
        "POST",
        "/v1/clients",
        headers=admin,
        json={
            "name": "Rosa Ruiz",
            "email": CLIENT_EMAIL,
            "password": CLIENT_PASSWORD,
            "services": [{"name": "Hosting Linux — rosa.example"}],
        },
    )
    assert status == 201, client
    me = await token(suite, client["client_number"], CLIENT_PASSWORD)
    status, categories = await tickets.request("GET", "/v1/categories", headers=me)
    category = {c["name"]: c["id"] for c in categories}

    async def opened(name: str) -> dict:
        body = {
            "service_id": client["services"][0]["id"],
            "category_id": category[name],
            "body": f"No puedo entrar al webmail ({name}).",
        }
        return await open_when_known(tickets, me, body, message="tickets knows Rosa")

    async def answer(number: int, headers: dict[str, str], text: str) -> None:
        status, _ = await tickets_2.request(
            "POST", f"/v1/tickets/{number}/messages", headers=headers, json={"body": text}
        )
        assert status == 201

    # The operator answers; the client does not: the ticket closes itself.
    first = (await opened("Correo electrónico"))["number"]
    await answer(first, admin, "Ya puede entrar: reiniciamos el webmail.")
    notice = (await wait_for(lambda: notices(suite, first), timeout=30, message="notice"))[0]
    assert f"http://panel.story.example/tickets/{first}" in text_of(notice)
    assert "reabrir" in text_of(notice).lower()
    status, ticket = await tickets.request("GET", f"/v1/tickets/{first}", headers=me)
    assert ticket["status"] == "closed"
    assert [(c["by"], c["name"]) for c in ticket["closures"]] == [("system", None)]

    # The client wrote after the operator: that ticket waits for support, however long.
    second = (await opened("Facturación"))["number"]
    await answer(second, admin, "¿Qué factura?")
    await answer(second, me, "La de octubre.")
    # An operator closes a third: the client is told who closed it.
    third = (await opened("Dominios y DNS"))["number"]
    status, _ = await tickets.request("POST", f"/v1/tickets/{third}/close", headers=admin)
    assert status == 200
    closed_by_operator = await wait_for(
        lambda: notices(suite, third), timeout=30, message="the operator's closing notice"
    )
    assert "Ada Admin" in text_of(closed_by_operator[0])

    # Both instances have run the task many times since: one notice for the first ticket, the
    # second still waiting for support.
    assert len(notices(suite, first)) == 1
    status, still = await tickets.request("GET", f"/v1/tickets/{second}", headers=me)
    assert still["status"] == "customer_reply"

    # The operator sees the first ticket's emails (receipt, answer, notice) delivered.
    async def delivered() -> list | None:
        status, body = await notifier.request(
            "GET", f"/v1/deliveries?ticket={first}", headers=admin
        )
        assert status == 200, body
        kinds = sorted(d["kind"] for d in body["items"] if d["status"] == "sent")
        return kinds if kinds == ["closed", "receipt", "reply"] else None

    await wait_for(delivered, timeout=30, message="the first ticket's emails listed as sent")
    ids = [m["Message-ID"] for m in suite.mailbox.all()]
    assert len(ids) == len(set(ids))
