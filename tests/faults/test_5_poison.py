"""Poison on the notifier's queue (a body that is no event, a reply from an unknown channel):
each is dead-lettered once, listed for an admin, never emailed, and the rest still flows."""

import uuid
from collections import Counter

import aio_pika

from shared import events
from shared.broker import declare_topology
from shared.events import Envelope
from tests.faults.report import report
from tests.faults.stack import Stack
from tests.support.sealing import sealed
from tests.support.waiting import wait_for


async def publish(url: str, body: bytes, routing_key: str, message_id: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await declare_topology(channel)
        message = aio_pika.Message(
            body,
            message_id=message_id,
            type=routing_key,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(message, routing_key, mandatory=True)


async def test_poison_is_dead_lettered_and_the_rest_flows(stack: Stack) -> None:
    client = stack.clients[0]
    since = len(stack.relay.received)
    malformed_id = uuid.uuid4()
    await publish(
        stack.rabbit.url,
        b'{"id": "this is not an event", "data": ',
        events.TicketReplied.routing_key,
        str(malformed_id),
    )
    unknown = Envelope.wrap(
        events.TicketReplied(
            number=1,
            client_number=client.number,
            subject="Correo",
            message_id=1,
            author_kind="operator",
            author_name="Olga",
            body="poison: must never be emailed",
            channel="carrier-pigeon",
        )
    )
    await publish(
        stack.rabbit.url, unknown.model_dump_json().encode(), unknown.type, str(unknown.id)
    )
    normal = Envelope.wrap(
        events.PasswordRecoveryRequested(
            client_number=client.number,
            email="after-the-poison@faults.example",
            language="es",
            reset_token=sealed("after-the-poison"),
        )
    )
    await publish(stack.rabbit.url, normal.model_dump_json().encode(), normal.type, str(normal.id))

    await stack.relay.wait(1, address="after-the-poison@faults.example", timeout=30)

    async def both_dead() -> list[dict] | None:
        letters = await stack.dead_letters()
        ids = {d["event_id"] for d in letters}
        return letters if {str(malformed_id), str(unknown.id)} <= ids else None

    letters = await wait_for(both_dead, timeout=30, interval=0.3, message="both dead letters")
    mine = [d for d in letters if d["event_id"] in (str(malformed_id), str(unknown.id))]
    per_event = Counter(d["event_id"] for d in mine)
    poisoned = [r for r in stack.relay.received[since:] if "must never be emailed" in r.text()]
    report(
        f"[5] poison published onto notifier.events: a truncated JSON body and a "
        f"tickets.ticket.replied from channel 'carrier-pigeon', then a normal event: "
        f"GET /v1/dead-letters (admin) lists {len(mine)} entries "
        f"({'; '.join(d['reason'].splitlines()[0][:60] for d in mine)}), none emailed "
        f"({len(poisoned)} poison emails); the normal email arrived after them"
    )
    assert all(n == 1 for n in per_event.values()), per_event
    assert not poisoned
