"""The tickets.ticket.* events, as a consumer sees them on the real broker."""

import json
import uuid
from datetime import datetime

from shared.resources import POOL
from tests.support.stack import PANEL_KEY

PANEL = {"X-Helpdesk-Channel": "panel", "X-Helpdesk-Panel-Key": PANEL_KEY}


def _messages(event_tap, routing_key):
    return [m for m in event_tap.messages if m.routing_key == routing_key]


async def test_created_event(desk, event_tap):
    client = await desk.new_client()
    request_id = f"req-{uuid.uuid4().hex}"
    service = client["services"][0]
    status, ticket = await desk.create(client, body="  Hola\n<b>correo</b> 🙂 ")
    assert status == 201
    status, ticket = await desk.call(
        "POST",
        "/v1/tickets",
        client["headers"] | {"X-Request-ID": request_id},
        json={
            "service_id": service["id"],
            "category_id": await desk.category("Facturación"),
            "body": "Factura duplicada",
        },
        expect=201,
    )
    bodies = await event_tap.wait("tickets.ticket.created", count=2)
    first, second = sorted(bodies, key=lambda b: b["data"]["number"])
    assert first["data"]["body"] == "  Hola\n<b>correo</b> 🙂 "
    assert second["data"] == {
        "number": ticket["number"],
        "client_number": client["client_number"],
        "subject": "Facturación",
        "service": {"id": service["id"], "name": service["name"]},
        "body": "Factura duplicada",
        "attachments": [],
    }
    # The envelope, and the AMQP properties that go with it.
    assert set(second) == {"id", "type", "version", "occurred_at", "data"}
    assert second["type"] == "tickets.ticket.created" and second["version"] == 1
    occurred = datetime.fromisoformat(second["occurred_at"].replace("Z", "+00:00"))
    assert occurred.utcoffset().total_seconds() == 0
    [message] = [
        m
        for m in _messages(event_tap, "tickets.ticket.created")
        if json.loads(m.body)["id"] == second["id"]
    ]
    assert message.message_id == second["id"] and uuid.UUID(message.message_id)
    assert message.correlation_id == request_id
    assert message.type == "tickets.ticket.created"
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2  # persistent
    # Its outbox row names the ticket, which keeps the ticket's events in order.
    pool = desk.tickets.server.app[POOL]
    aggregate = await pool.fetchval(
        "SELECT aggregate FROM outbox WHERE event_id = $1", message.message_id
    )
    assert aggregate == f"ticket:{ticket['number']}"


async def test_replied_events_for_client_and_operator_with_channel(desk, event_tap):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    _, by_client = await desk.reply(n, client["headers"] | PANEL, "Desde el panel", expect=201)
    _, by_operator = await desk.reply(
        n, desk.operator | {"X-Request-ID": "op-reply-1"}, "Desde la API", expect=201
    )
    _, by_admin = await desk.reply(
        n, desk.admin | PANEL | {"X-Helpdesk-Channel": "PANEL"}, "Admin en el panel", expect=201
    )
    _, odd = await desk.reply(
        n, client["headers"] | {"X-Helpdesk-Channel": "email"}, "Otro canal", expect=201
    )
    bodies = await event_tap.wait("tickets.ticket.replied", count=4)
    data = {b["data"]["message_id"]: b["data"] for b in bodies}
    common = {
        "number": n,
        "client_number": client["client_number"],
        "subject": "Correo electrónico",
        "summary": "No puedo enviar correos.",
        "attachments": [],
    }
    assert data[by_client["id"]] == common | {
        "message_id": by_client["id"],
        "author_kind": "client",
        "author_name": client["name"],
        "body": "Desde el panel",
        "channel": "panel",
        "attachments": [],
    }
    assert data[by_operator["id"]] == common | {
        "message_id": by_operator["id"],
        "author_kind": "operator",
        "author_name": "Oscar Operador",
        "body": "Desde la API",
        "channel": "api",
        "attachments": [],
    }
    assert data[by_admin["id"]]["channel"] == "panel"
    assert data[by_admin["id"]]["author_kind"] == "operator"
    assert data[by_admin["id"]]["author_name"] == "Ada Admin"
    assert data[odd["id"]]["channel"] == "api"
    [operator_message] = [
        m
        for m in _messages(event_tap, "tickets.ticket.replied")
        if json.loads(m.body)["data"]["message_id"] == by_operator["id"]
    ]
    assert operator_message.correlation_id == "op-reply-1"
    # Their outbox rows name the ticket, which keeps the ticket's events in order.
    pool = desk.tickets.server.app[POOL]
    aggregates = await pool.fetch(
        "SELECT DISTINCT aggregate FROM outbox WHERE routing_key = 'tickets.ticket.replied'"
        " AND payload->'data'->>'number' = $1",
        str(n),
    )
    assert [r["aggregate"] for r in aggregates] == [f"ticket:{n}"]


async def test_reopened_and_closed_events(desk, event_tap):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.close(n, client["headers"] | {"X-Request-ID": "close-1"}, expect=200)
    await desk.reopen(n, client["headers"] | {"X-Request-ID": "reopen-1"}, "Otra vez", expect=200)
    await desk.close(n, desk.operator, expect=200)
    closed = await event_tap.wait("tickets.ticket.closed", count=2)
    reopened = await event_tap.wait("tickets.ticket.reopened")
    about = {
        "number": n,
        "client_number": client["client_number"],
        "subject": "Correo electrónico",
        "summary": "No puedo enviar correos.",
    }
    assert [b["data"] for b in closed] == [
        about | {"closed_by": "client"},
        about | {"closed_by": "operator", "closed_by_name": "Oscar Operador"},
    ]
    assert [b["data"] for b in reopened] == [
        {
            "number": n,
            "client_number": client["client_number"],
            "body": "Otra vez",
            "attachments": [],
        }
    ]
    by_type = {m.routing_key: m for m in event_tap.messages if m.correlation_id}
    assert _messages(event_tap, "tickets.ticket.reopened")[0].correlation_id == "reopen-1"
    assert _messages(event_tap, "tickets.ticket.closed")[0].correlation_id == "close-1"
    assert by_type


async def test_every_change_has_exactly_one_event_and_refusals_have_none(desk, event_tap):
    client = await desk.new_client()
    me = client["headers"]
    n = (await desk.open(client))["number"]
    await desk.create(client, expect=409)  # duplicate: no event
    await desk.reopen(n, me, expect=409)
    await desk.reply(n, desk.operator, expect=201)
    await desk.close(n, me, expect=200)
    await desk.close(n, me, expect=409)
    await desk.reply(n, me, expect=409)
    await desk.reopen(n, desk.operator, expect=403)
    await desk.reopen(n, me, expect=200)
    # The last change is published last (one aggregate, in order): once it is here, all are.
    await event_tap.wait("tickets.ticket.reopened")
    tickets_events = [m for m in event_tap.messages if m.routing_key.startswith("tickets.")]
    assert [m.routing_key for m in tickets_events] == [
        "tickets.ticket.created",
        "tickets.ticket.replied",
        "tickets.ticket.closed",
        "tickets.ticket.reopened",
    ]
    ids = [m.message_id for m in tickets_events]
    assert len(set(ids)) == len(ids)
    assert all(json.loads(m.body)["id"] == m.message_id for m in tickets_events)


async def test_only_the_panel_s_key_makes_a_reply_come_from_the_panel(desk, event_tap):
    """Anyone can send X-Helpdesk-Channel: panel; without the key the panel and tickets share,
    or with another, the reply's channel is `api`."""
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    bare = {"X-Helpdesk-Channel": "panel"}
    wrong = bare | {"X-Helpdesk-Panel-Key": "guessed"}
    _, no_key = await desk.reply(n, client["headers"] | bare, "Sin clave", expect=201)
    _, bad_key = await desk.reply(n, client["headers"] | wrong, "Clave falsa", expect=201)
    _, good = await desk.reply(n, client["headers"] | PANEL, "Del panel", expect=201)
    bodies = await event_tap.wait("tickets.ticket.replied", count=3)
    channel = {b["data"]["message_id"]: b["data"]["channel"] for b in bodies}
    assert [channel[m["id"]] for m in (no_key, bad_key, good)] == ["api", "api", "panel"]
