"""Delivery status (SPEC 9.3): operators see the emails about a ticket; an admin resends one."""

import uuid

import pytest
from aiohttp.test_utils import TestClient

from services.notifier.api import delivery_status
from shared import events
from tests.notifier.conftest import Notifier, Publisher, StartNotifier
from tests.notifier.test_delivery import known_client, reply
from tests.support import stack
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_for

SERVICE = events.ServiceRef(id=1, name="Hosting Linux Plus")


def created(number: int, client: str) -> events.TicketCreated:
    return events.TicketCreated(
        number=number,
        client_number=client,
        subject="Correo electrónico",
        service=SERVICE,
        body="No puedo entrar a mi casilla.",
    )


async def deliveries(http: TestClient, ticket: int, headers: dict[str, str]) -> list[dict]:
    response = await http.get(f"/v1/deliveries?ticket={ticket}", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["items"]


async def statuses(http: TestClient, ticket: int, headers: dict[str, str]) -> list[str]:
    return [d["status"] for d in await deliveries(http, ticket, headers)]


async def test_a_delivered_answer_is_sent_a_refused_one_dead_and_the_admins_resend_sends_it(
    admin_notifier: Notifier, auth: TestClient, publisher: Publisher, smtp: SmtpSink
) -> None:
    notifier, http = admin_notifier, admin_notifier.client
    operator = await stack.bearer(auth, *stack.OPERATOR)
    admin = await stack.bearer(auth, *stack.ADMIN)
    await known_client(notifier, publisher, "3001", "juana@example.com")
    receipt = await publisher.event(created(12, "3001"))
    await smtp.wait(1, address="juana@example.com")
    await wait_for(lambda: _is(http, 12, operator, ["sent"]), message="the receipt sent")

    smtp.answer_for["juana@example.com"] = "550 5.1.1 Mailbox unavailable"
    answer = await publisher.event(reply(12, "3001"))
    await wait_for(
        lambda: _is(http, 12, operator, ["sent", "dead"]), message="the answer listed as dead"
    )
    await publisher.event(reply(13, "3001", summary="Otra"))  # another ticket: not listed
    first, dead = await deliveries(http, 12, operator)
    assert (first["id"], first["kind"], first["ticket"]) == (str(receipt.id), "receipt", 12)
    assert first["recipient"] == "juana@example.com"
    assert first["attempts"] == 1 and first["last_error"] is None
    assert first["sent_at"] is not None
    assert (dead["id"], dead["kind"], dead["ticket"]) == (str(answer.id), "reply", 12)
    assert dead["recipient"] == "juana@example.com"
    assert dead["last_error"].startswith("550 5.1.1 Mailbox unavailable")
    assert len(dead["last_error"]) <= 300
    assert dead["sent_at"] is None and dead["updated_at"] >= dead["created_at"]
    assert first["created_at"] <= dead["created_at"]

    del smtp.answer_for["juana@example.com"]
    response = await http.post(f"/v1/deliveries/{answer.id}/resend", headers=admin)
    assert response.status == 202, await response.text()
    assert (await response.json())["status"] in ("queued", "retrying", "sent")
    await wait_for(lambda: _is(http, 12, operator, ["sent", "sent"]), message="resent and sent")
    assert len(smtp.with_id(f"<{answer.id}@helpdesk.example>")) == 1

    response = await http.post(f"/v1/deliveries/{answer.id}/resend", headers=admin)
    assert response.status == 409
    assert response.content_type == "application/problem+json"
    response = await http.post(f"/v1/deliveries/{uuid.uuid4()}/resend", headers=admin)
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert await deliveries(http, 99, operator) == []


async def _is(http: TestClient, ticket: int, headers: dict[str, str], wanted: list[str]) -> bool:
    return await statuses(http, ticket, headers) == wanted


async def test_operators_and_admins_list_deliveries_only_an_admin_resends(
    admin_notifier: Notifier, auth: TestClient
) -> None:
    http = admin_notifier.client
    admin = await stack.bearer(auth, *stack.ADMIN)
    operator = await stack.bearer(auth, *stack.OPERATOR)
    body = {"name": "Juana", "email": "juana@example.com", "password": stack.CLIENT_PASSWORD}
    response = await auth.post("/v1/clients", json=body, headers=admin)
    assert response.status == 201, await response.text()
    client = await stack.bearer(auth, (await response.json())["client_number"], body["password"])
    resend = f"/v1/deliveries/{uuid.uuid4()}/resend"

    for headers in (operator, admin):
        assert await deliveries(http, 1, headers) == []
    for method, path, refused in (
        ("GET", "/v1/deliveries?ticket=1", [client]),
        ("POST", resend, [client, operator]),
    ):
        for headers, status in [({}, 401), ({"Authorization": "Bearer nope"}, 401)] + [
            (h, 403) for h in refused
        ]:
            response = await http.request(method, path, headers=headers)
            assert response.status == status, (method, path, status)
            assert response.content_type == "application/problem+json"
    assert (await http.post(resend, headers=admin)).status == 404


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?ticket=",
        "?ticket=abc",
        "?ticket=0",
        "?ticket=-3",
        "?ticket=99999999999999999999",
        "?ticket=1&other=2",
    ],
)
async def test_a_bad_ticket_number_is_422(
    admin_notifier: Notifier, auth: TestClient, query: str
) -> None:
    operator = await stack.bearer(auth, *stack.OPERATOR)
    response = await admin_notifier.client.get(f"/v1/deliveries{query}", headers=operator)
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert (await response.json())["errors"]


def test_internal_states_map_to_the_four_of_the_spec() -> None:
    assert delivery_status("pending", None) == "queued"
    assert delivery_status("sending", None) == "queued"
    assert delivery_status("pending", "451 4.3.0 Try later") == "retrying"
    assert delivery_status("sending", "relay unavailable") == "retrying"
    assert delivery_status("sent", None) == "sent"
    assert delivery_status("dead", "550 5.1.1 No") == "dead"


async def test_the_openapi_document_describes_the_delivery_routes(notifier: Notifier) -> None:
    document = await (await notifier.client.get("/openapi.json")).json()
    listing = document["paths"]["/v1/deliveries"]["get"]
    assert {"401", "403", "422"} <= set(listing["responses"])
    resend = document["paths"]["/v1/deliveries/{id}/resend"]["post"]
    assert {"202", "401", "403", "404", "409"} <= set(resend["responses"])


async def test_an_answer_the_relay_puts_off_is_retrying_with_the_relays_words(
    start_notifier: StartNotifier, auth: TestClient, publisher: Publisher, smtp: SmtpSink
) -> None:
    notifier = await start_notifier(auth_url=str(auth.make_url("/")), retry_delays=[60.0])
    operator = await stack.bearer(auth, *stack.OPERATOR)
    await known_client(notifier, publisher, "3002", "ana@example.com")
    smtp.answer_for["ana@example.com"] = "451 4.3.0 Mailbox busy, try later"
    await publisher.event(reply(14, "3002"))
    await wait_for(lambda: _is(notifier.client, 14, operator, ["retrying"]), message="retrying")
    [item] = await deliveries(notifier.client, 14, operator)
    assert item["last_error"] == "451 4.3.0 Mailbox busy, try later"
    assert (item["attempts"], item["recipient"], item["sent_at"]) == (1, "ana@example.com", None)
