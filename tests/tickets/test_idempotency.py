"""Idempotency-Key: a write repeated with the same key gets the first answer and writes nothing."""

import asyncio
import uuid

import pytest

from services.tickets.idempotency import KEEP_SECONDS, purge
from shared.resources import POOL


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def new_ticket(desk, client, **extra) -> dict:
    """The body of a POST /v1/tickets about the client's first service."""
    return {
        "service_id": client["services"][0]["id"],
        "category_id": await desk.category(),
        "body": "No carga la web.",
    } | extra


async def messages_of(desk, number: int) -> list[str]:
    _, ticket = await desk.get(number, desk.operator, expect=200)
    return [m["body"] for m in ticket["messages"]]


async def replied_events(desk, number: int) -> int:
    pool = desk.tickets.server.app[POOL]
    return await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE routing_key = 'tickets.ticket.replied'"
        " AND aggregate = $1",
        f"ticket:{number}",
    )


async def test_a_reply_sent_again_with_its_key_is_added_once(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    once = desk.operator | key()
    response = await desk.tickets.post(
        f"/v1/tickets/{n}/messages", json={"body": "Revise el DNS."}, headers=once
    )
    assert response.status == 201
    first = await response.json()
    assert "Idempotent-Replayed" not in response.headers
    again = await desk.tickets.post(
        f"/v1/tickets/{n}/messages", json={"body": "Revise el DNS."}, headers=once
    )
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == first
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Revise el DNS."]
    assert await replied_events(desk, n) == 1


async def test_the_same_reply_sent_at_once_is_added_once(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    once = client["headers"] | key()
    answers = await asyncio.gather(
        *(desk.reply(n, once, "Adjunto el registro.", expect=201) for _ in range(5))
    )
    assert len({body["id"] for _, body in answers}) == 1
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Adjunto el registro."]
    assert await replied_events(desk, n) == 1


async def test_a_key_used_with_another_request_is_refused(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    once = client["headers"] | key()
    await desk.reply(n, once, "Primero.", expect=201)
    _, problem = await desk.reply(n, once, "Otro texto.", expect=422)
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    other = (await desk.open(client, allow_duplicate=True))["number"]
    await desk.reply(other, once, "Primero.", expect=422)  # same body, another ticket
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Primero."]
    assert await messages_of(desk, other) == ["No puedo enviar correos."]


async def test_keys_belong_to_their_caller(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    shared_key = key()
    await desk.reply(n, client["headers"] | shared_key, "Igual.", expect=201)
    await desk.reply(n, desk.operator | shared_key, "Igual.", expect=201)
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Igual.", "Igual."]


async def test_a_refused_request_leaves_its_key_free(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.close(n, desk.operator, expect=200)
    once = client["headers"] | key()
    await desk.reply(n, once, "Sigue igual.", expect=409)  # closed: reopen it instead
    await desk.reopen(n, client["headers"], "Reabro.", expect=200)
    status, _ = await desk.reply(n, once, "Sigue igual.")
    assert status == 201
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Reabro.", "Sigue igual."]


async def test_a_ticket_opened_again_with_its_key_is_the_same_ticket(desk):
    client = await desk.new_client()
    once = client["headers"] | key()
    payload = await new_ticket(desk, client)
    first = await desk.tickets.post("/v1/tickets", json=payload, headers=once)
    again = await desk.tickets.post("/v1/tickets", json=payload, headers=once)
    assert (first.status, again.status) == (201, 201)  # without the key: 409, already open
    assert again.headers["Location"] == first.headers["Location"]
    assert await again.json() == await first.json()
    assert len(await desk.all_numbers(client["headers"])) == 1


async def test_a_reopening_sent_again_with_its_key_is_done_once(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.close(n, desk.operator, expect=200)
    once = client["headers"] | key()
    _, first = await desk.reopen(n, once, "Vuelve a fallar.", expect=200)
    _, again = await desk.reopen(n, once, "Vuelve a fallar.", expect=200)  # without: 409
    assert again == first
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Vuelve a fallar."]


@pytest.mark.parametrize("bad", ["", "two words", "x" * 256, "tab\tkey"])
async def test_a_malformed_key_is_refused(desk, bad):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    _, problem = await desk.reply(
        n, client["headers"] | {"Idempotency-Key": bad}, "Hola.", expect=422
    )
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert await messages_of(desk, n) == ["No puedo enviar correos."]


async def test_keys_older_than_a_day_are_purged(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    once = client["headers"] | key()
    await desk.reply(n, once, "Ayer.", expect=201)
    pool = desk.tickets.server.app[POOL]
    await age(pool, once["Idempotency-Key"])
    await purge(desk.tickets.server.app)  # the chore tickets runs every 10 minutes
    assert not await pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE key = $1", once["Idempotency-Key"]
    )
    await desk.reply(n, once, "Hoy, otro texto.", expect=201)  # the key is free again
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Ayer.", "Hoy, otro texto."]


async def test_a_key_older_than_a_day_is_free_before_the_purge(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    once = client["headers"] | key()
    await desk.reply(n, once, "Ayer.", expect=201)
    await age(desk.tickets.server.app[POOL], once["Idempotency-Key"])
    await desk.reply(n, once, "Hoy, otro texto.", expect=201)
    _, replayed = await desk.reply(n, once, "Hoy, otro texto.", expect=201)
    assert replayed["body"] == "Hoy, otro texto."
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Ayer.", "Hoy, otro texto."]


async def test_the_same_ticket_opened_at_once_is_opened_once(desk):
    client = await desk.new_client()
    once = client["headers"] | key()
    payload = await new_ticket(desk, client, allow_duplicate=True)  # without the key: four
    answers = await asyncio.gather(
        *(desk.call("POST", "/v1/tickets", once, json=payload) for _ in range(4))
    )
    assert {status for status, _ in answers} == {201}
    assert len({body["number"] for _, body in answers}) == 1
    assert len(await desk.all_numbers(client["headers"])) == 1


async def test_two_spellings_of_one_ticket_number_are_the_same_request(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    once = client["headers"] | key()
    await desk.call("POST", f"/v1/tickets/{n}/messages", once, json={"body": "Hola."}, expect=201)
    response = await desk.tickets.post(
        f"/v1/tickets/000{n}/messages", json={"body": "Hola."}, headers=once
    )
    assert response.status == 201 and response.headers["Idempotent-Replayed"] == "true"
    assert await messages_of(desk, n) == ["No puedo enviar correos.", "Hola."]


async def age(pool, idempotency_key: str) -> None:
    """Make one key older than the time keys are kept."""
    await pool.execute(
        "UPDATE idempotency_keys SET created_at = now() - make_interval(secs => $1 + 60)"
        " WHERE key = $2",
        KEEP_SECONDS,
        idempotency_key,
    )
