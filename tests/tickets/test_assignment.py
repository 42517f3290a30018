"""Assignment (SPEC 9.2) and the projection of operators it relies on (auth.operator.changed)."""

from datetime import UTC, datetime, timedelta

import aio_pika
import pytest

from services.tickets.consumers import OPERATORS_CONSUMER, OPERATORS_QUEUE
from shared import events
from shared.resources import POOL
from tests.support.waiting import wait_for


async def _assign(desk, number, who, operator_id, **kw):
    return await desk.call(
        "POST", f"/v1/tickets/{number}/assign", who, json={"operator_id": operator_id}, **kw
    )


def _pool(desk):
    return desk.tickets.server.app[POOL]


async def test_an_operator_assigns_a_ticket_to_themselves_then_to_nobody(desk, event_tap):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    me = await desk.staff_id(desk.operator)
    # Before auth's event about the test's operator may have reached tickets: their token says
    # who they are.
    _, ticket = await _assign(desk, n, desk.operator, me, expect=200)
    assert ticket["assignee"] == {"id": me, "name": "Oscar Operador"}
    assert ticket["status"] == "open" and ticket["notes"] == []
    _, page = await desk.list_page(desk.operator)
    assert page["items"][0]["assignee"] == {"id": me, "name": "Oscar Operador"}
    _, ticket = await _assign(desk, n, desk.operator, None, expect=200)
    assert ticket["assignee"] is None
    assigned = await event_tap.wait("tickets.ticket.assigned", count=2)
    assert [b["data"] for b in assigned] == [
        {
            "number": n,
            "client_number": client["client_number"],
            "assignee": {"id": me, "name": "Oscar Operador"},
            "assigned_by": "Oscar Operador",
        },
        {"number": n, "client_number": client["client_number"], "assigned_by": "Oscar Operador"},
    ]


async def test_a_ticket_is_assigned_to_another_operator_and_renamed_with_them(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    olga = await desk.new_operator("Olga Operadora")
    _, ticket = await _assign(desk, n, desk.operator, olga["id"], expect=200)
    assert ticket["assignee"] == {"id": olga["id"], "name": "Olga Operadora"}
    # The client never sees who it is assigned to; the updated_at of its list stays.
    _, view = await desk.get(n, client["headers"], expect=200)
    assert "assignee" not in view
    assert view["updated_at"] == ticket["updated_at"]
    response = await desk.auth.patch(
        f"/v1/operators/{olga['id']}", json={"name": "Olga Ruiz"}, headers=desk.admin
    )
    assert response.status == 200, await response.text()
    await desk.wait_operator(olga["id"], name="Olga Ruiz")
    _, ticket = await desk.get(n, olga["headers"], expect=200)
    assert ticket["assignee"] == {"id": olga["id"], "name": "Olga Ruiz"}


async def test_assigning_again_to_the_same_operator_publishes_nothing_new(desk, event_tap):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    me = await desk.staff_id(desk.operator)
    await _assign(desk, n, desk.operator, me, expect=200)
    await _assign(desk, n, desk.operator, me, expect=200)
    await event_tap.wait("tickets.ticket.assigned")
    count = await _pool(desk).fetchval(
        "SELECT count(*) FROM outbox WHERE routing_key = 'tickets.ticket.assigned'"
    )
    assert count == 1


async def test_an_unknown_or_disabled_operator_is_422(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    status, problem = await _assign(desk, n, desk.operator, 999_999)
    assert status == 422, problem
    assert [e["field"] for e in problem["errors"]] == ["operator_id"]
    gone = await desk.new_operator("Pablo Baja")
    response = await desk.auth.patch(
        f"/v1/operators/{gone['id']}", json={"disabled": True}, headers=desk.admin
    )
    assert response.status == 200, await response.text()
    await desk.wait_operator(gone["id"], disabled=True)
    status, problem = await _assign(desk, n, desk.operator, gone["id"])
    assert status == 422, problem
    assert "disabled" in problem["detail"]
    for bad in ("me", 0, -1, 2**63, "1", 1.5):
        status, problem = await _assign(desk, n, desk.operator, bad)
        assert status == 422, (bad, problem)
    _, ticket = await desk.get(n, desk.operator, expect=200)
    assert ticket["assignee"] is None


async def test_clients_cannot_assign_nor_filter_by_assignee(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    me = await desk.staff_id(desk.operator)
    status, problem = await _assign(desk, n, client["headers"], me)
    assert status == 403, problem
    status, problem = await desk.list_page(client["headers"], assignee="none")
    assert status == 403, problem
    status, _ = await _assign(desk, 999_999, desk.operator, me)
    assert status == 404


async def test_the_list_and_the_queue_filter_by_assignee(desk):
    client = await desk.new_client()
    mine, theirs, nobodys = [
        (await desk.open(client, body=f"Consulta {i}", allow_duplicate=True))["number"]
        for i in range(3)
    ]
    me = await desk.staff_id(desk.operator)
    olga = await desk.new_operator("Olga Operadora")
    await _assign(desk, mine, desk.operator, me, expect=200)
    await _assign(desk, theirs, desk.operator, olga["id"], expect=200)
    for sort in ("activity", "waiting"):
        assert await desk.numbers(desk.operator, assignee="me", sort=sort) == [mine]
        assert await desk.numbers(olga["headers"], assignee="me", sort=sort) == [theirs]
        assert await desk.numbers(desk.operator, assignee=str(olga["id"]), sort=sort) == [theirs]
        assert await desk.numbers(desk.admin, assignee="none", sort=sort) == [nobodys]
        assert await desk.numbers(desk.admin, assignee="424242", sort=sort) == []
    both = await desk.numbers(desk.operator, assignee="me", status="closed")
    assert both == []
    for bad in ("", "ME", "0", "-1", "1" * 19, "alguien"):
        status, problem = await desk.list_page(desk.operator, assignee=bad)
        assert status == 422, (bad, problem)


# --- the projection of operators ---------------------------------------------------------------


@pytest.fixture
async def publish(amqp_url):
    """Publishes straight to tickets' operators queue, as the broker would deliver auth's."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()

    async def send(envelope: events.Envelope) -> None:
        await channel.default_exchange.publish(
            aio_pika.Message(
                envelope.model_dump_json().encode(),
                message_id=str(envelope.id),
                content_type="application/json",
            ),
            routing_key=OPERATORS_QUEUE.name,
        )

    yield send
    await connection.close()


def _changed(operator_id: int, name: str, *, ago: float = 0, **kw) -> events.Envelope:
    envelope = events.Envelope.wrap(
        events.OperatorChanged(operator_id=operator_id, name=name, role="operator", **kw)
    )
    occurred_at = datetime.now(UTC) - timedelta(seconds=ago)
    return envelope.model_copy(update={"occurred_at": occurred_at})


async def _processed(desk, envelope: events.Envelope) -> int:
    return await _pool(desk).fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = $2",
        OPERATORS_CONSUMER,
        envelope.id,
    )


async def _operator(desk, operator_id: int):
    return await _pool(desk).fetchrow(
        "SELECT name, role, disabled FROM operators WHERE id = $1", operator_id
    )


async def test_the_projection_applies_an_event_once_and_ignores_older_ones(desk, publish):
    first = _changed(880001, "Ana", ago=60)
    await publish(first)
    await publish(first)
    await wait_for(lambda: _processed(desk, first), message="the first event handled")
    assert dict(await _operator(desk, 880001)) == {
        "name": "Ana",
        "role": "operator",
        "disabled": False,
    }
    newer = _changed(880001, "Ana García", disabled=True)
    older = _changed(880001, "Ana Antigua", ago=120)
    await publish(newer)
    await publish(older)
    await publish(first)
    await wait_for(lambda: _processed(desk, older), message="the older event handled")
    assert dict(await _operator(desk, 880001)) == {
        "name": "Ana García",
        "role": "operator",
        "disabled": True,
    }
    assert await _processed(desk, first) == 1


async def test_an_event_replaces_what_an_operators_own_token_said(desk, publish):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    olga = await desk.new_operator("Olga Operadora")
    # As if auth's event about her had not arrived yet (she is known, so none is pending).
    await _pool(desk).execute("DELETE FROM operators WHERE id = $1", olga["id"])
    _, ticket = await _assign(desk, n, olga["headers"], olga["id"], expect=200)
    assert ticket["assignee"] == {"id": olga["id"], "name": "Olga Operadora"}
    # Even an event older than the assignment is newer than what a token tells.
    renamed = _changed(olga["id"], "Olga Ruiz", ago=3600)
    await publish(renamed)
    await wait_for(lambda: _processed(desk, renamed), message="the event handled")
    _, ticket = await desk.get(n, desk.operator, expect=200)
    assert ticket["assignee"] == {"id": olga["id"], "name": "Olga Ruiz"}
