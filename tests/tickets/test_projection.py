"""The projection of clients' services from auth.client.* events, and tickets without auth."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest

from services.tickets.consumers import CONSUMER, QUEUE, on_client_event
from shared import events
from shared.consumer import idempotent_consumer
from shared.resources import POOL
from tests.support.waiting import wait_for


def _envelope(data: events.EventData, *, occurred_at: datetime | None = None) -> events.Envelope:
    envelope = events.Envelope.wrap(data)
    if occurred_at is not None:
        envelope = envelope.model_copy(update={"occurred_at": occurred_at})
    return envelope


@pytest.fixture
async def publish(amqp_url):
    """Publishes straight to tickets' queue, as the broker would deliver auth's events."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()

    async def send(envelope: events.Envelope | bytes) -> None:
        body = envelope if isinstance(envelope, bytes) else envelope.model_dump_json().encode()
        message_id = None if isinstance(envelope, bytes) else str(envelope.id)
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=message_id, content_type="application/json"),
            routing_key=QUEUE.name,
        )

    yield send
    await connection.close()


def _pool(desk):
    return desk.tickets.server.app[POOL]


async def _services(desk, client_number: str) -> dict[int, str]:
    rows = await _pool(desk).fetch(
        "SELECT service_id, name FROM client_services WHERE client_number = $1", client_number
    )
    return {r["service_id"]: r["name"] for r in rows}


async def _processed(desk, envelope: events.Envelope) -> int:
    return await _pool(desk).fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = $2",
        CONSUMER,
        envelope.id,
    )


async def test_a_service_added_in_auth_becomes_usable(desk):
    client = await desk.new_client()
    response = await desk.auth.post(
        f"/v1/clients/{client['client_number']}/services",
        json={"name": "VPS Pro — vps.example.com"},
        headers=desk.admin,
    )
    assert response.status == 201, await response.text()
    service = await response.json()
    client["services"].append(service)
    await desk.wait_services(client)
    status, ticket = await desk.create(client, service_id=service["id"])
    assert status == 201, ticket
    assert ticket["service"] == {"id": service["id"], "name": "VPS Pro — vps.example.com"}


async def test_the_same_event_twice_has_one_effect_through_the_broker(desk, publish):
    number = "990001"
    first = _envelope(
        events.ClientUpdated(client_number=number, services=[events.ServiceRef(id=9001, name="A")])
    )
    await publish(first)
    await publish(first)
    await wait_for(lambda: _processed(desk, first), message="the first event handled")
    assert await _services(desk, number) == {9001: "A"}
    # A later event is applied; the first one delivered once more still changes nothing.
    second = _envelope(
        events.ClientUpdated(client_number=number, services=[events.ServiceRef(id=9002, name="B")])
    )
    await publish(second)
    await publish(first)
    await wait_for(lambda: _processed(desk, second), message="the second event handled")

    async def only_b() -> bool:
        return await _services(desk, number) == {9002: "B"}

    await wait_for(only_b, message="the services of the second event")
    assert await _processed(desk, first) == 1


class FakeMessage:
    """The part of an aio-pika incoming message the idempotent consumer uses."""

    def __init__(self, envelope: events.Envelope) -> None:
        self.body = envelope.model_dump_json().encode()
        self.correlation_id = "fake"
        self.outcome: list[str] = []

    async def ack(self) -> None:
        self.outcome.append("ack")

    async def reject(self, requeue: bool = False) -> None:
        self.outcome.append(f"reject requeue={requeue}")

    async def nack(self, requeue: bool = True) -> None:
        self.outcome.append(f"nack requeue={requeue}")


async def test_the_consumer_handles_an_event_id_once(desk):
    calls = []

    async def counting(conn, envelope):
        calls.append(envelope.id)
        await on_client_event(conn, envelope)

    # Its own consumer name, so the running service's consumer does not interfere.
    consume = idempotent_consumer("tests.projection", _pool(desk), counting)
    envelope = _envelope(
        events.ClientCreated(
            client_number="990002",
            name="Eva",
            email="eva@example.com",
            language="es",
            services=[events.ServiceRef(id=9101, name="Hosting")],
        )
    )
    messages = [FakeMessage(envelope), FakeMessage(envelope)]
    for message in messages:
        await consume(message)
    assert calls == [envelope.id]
    assert [m.outcome for m in messages] == [["ack"], ["ack"]]
    assert await _services(desk, "990002") == {9101: "Hosting"}


async def test_an_older_event_arriving_late_does_not_undo_a_newer_one(desk, publish):
    client = await desk.new_client(services=("Hosting", "Correo"))
    number = client["client_number"]
    kept = {s["id"]: s["name"] for s in client["services"]}
    stale = _envelope(
        events.ClientUpdated(client_number=number, services=[]),
        occurred_at=datetime.now(UTC) - timedelta(hours=1),
    )
    await publish(stale)
    await wait_for(lambda: _processed(desk, stale), message="the stale event handled")
    assert await _services(desk, number) == kept
    status, body = await desk.create(client)
    assert status == 201, body
    # A newer one that drops a service is applied: that service is no longer the client's.
    dropped = client["services"][1]
    newer = _envelope(
        events.ClientUpdated(
            client_number=number,
            services=[events.ServiceRef(**client["services"][0])],
        )
    )
    await publish(newer)
    await wait_for(lambda: _processed(desk, newer), message="the newer event handled")
    assert await _services(desk, number) == {client["services"][0]["id"]: "Hosting"}
    status, body = await desk.create(client, service_id=dropped["id"])
    assert status == 422, body


async def test_an_update_without_services_keeps_them(desk, publish):
    client = await desk.new_client()
    update = _envelope(
        events.ClientUpdated(client_number=client["client_number"], email="nuevo@example.com")
    )
    await publish(update)
    await wait_for(lambda: _processed(desk, update), message="the update handled")
    assert await _services(desk, client["client_number"]) == {
        s["id"]: s["name"] for s in client["services"]
    }


async def test_a_poison_message_does_not_block_the_queue(desk, publish):
    await publish(b"not json at all")
    await publish(json.dumps({"id": str(uuid.uuid4()), "type": "auth.client.updated"}).encode())
    odd = _envelope(events.TicketClosed(number=1, client_number="1", closed_by="client"))
    await publish(odd)
    # A client created after them still reaches tickets.
    client = await desk.new_client()
    status, body = await desk.create(client)
    assert status == 201, body
    assert await _services(desk, "1") == {}


async def test_a_ticket_is_opened_while_auth_is_stopped(desk):
    client = await desk.new_client()
    await desk.auth.close()  # tokens still verify with the keys tickets cached
    status, ticket = await desk.create(client, body="Auth está caído, ¿y qué?")
    assert status == 201, ticket
    n = ticket["number"]
    await desk.reply(n, desk.operator, "Lo vemos.", expect=201)
    await desk.get(n, client["headers"], expect=200)
    assert await desk.numbers(client["headers"]) == [n]
    # A token that was never valid is still refused, not a 5xx.
    await desk.call("GET", "/v1/tickets", {"Authorization": "Bearer a.b.c"}, expect=401)
