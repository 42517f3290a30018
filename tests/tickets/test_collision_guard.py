"""The collision guard (SPEC 9.2): a reply or a close naming a message that is no longer the
ticket's newest is refused with 409 and the newest message's id."""

from shared.resources import POOL


async def _reply(desk, number, who, body, last, **kw):
    return await desk.call(
        "POST",
        f"/v1/tickets/{number}/messages",
        who,
        json={"body": body, "if_last_message_id": last},
        **kw,
    )


async def _close(desk, number, who, **kw):
    return await desk.call("POST", f"/v1/tickets/{number}/close", who, **kw)


async def test_a_reply_that_missed_a_newer_message_is_409(desk, event_tap):
    client = await desk.new_client()
    ticket = await desk.open(client)
    n, seen = ticket["number"], ticket["messages"][0]["id"]
    # While the operator writes, the client adds to the ticket.
    _, newer = await desk.reply(n, client["headers"], "¡Ya funciona!", expect=201)
    status, problem = await _reply(desk, n, desk.operator, "Pruebe reiniciar.", seen)
    assert status == 409, problem
    assert problem["last_message_id"] == newer["id"]
    assert problem["status"] == 409 and problem["type"] and problem["detail"]
    _, view = await desk.get(n, desk.operator, expect=200)
    assert [m["id"] for m in view["messages"]] == [seen, newer["id"]]
    assert view["status"] == "customer_reply"
    # Having read it, the operator answers.
    _, answer = await _reply(desk, n, desk.operator, "Me alegro.", newer["id"], expect=201)
    await event_tap.wait("tickets.ticket.replied", count=2)
    assert [b["data"]["message_id"] for b in event_tap.bodies("tickets.ticket.replied")] == [
        newer["id"],
        answer["id"],
    ]


async def test_a_reply_without_the_claim_is_not_guarded(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.reply(n, client["headers"], expect=201)
    await desk.reply(n, desk.operator, expect=201)
    for bad in (0, -1, "siete", 2**63):
        status, problem = await _reply(desk, n, desk.operator, "Hola", bad)
        assert status == 422, (bad, problem)


async def test_a_close_that_missed_a_newer_message_is_409(desk, event_tap):
    client = await desk.new_client()
    ticket = await desk.open(client)
    n, seen = ticket["number"], ticket["messages"][0]["id"]
    _, newer = await desk.reply(n, client["headers"], "Una cosa más.", expect=201)
    status, problem = await _close(desk, n, desk.operator, json={"if_last_message_id": seen})
    assert status == 409, problem
    assert problem["last_message_id"] == newer["id"]
    _, view = await desk.get(n, desk.operator, expect=200)
    assert view["status"] == "customer_reply"
    _, closed = await _close(
        desk, n, desk.operator, json={"if_last_message_id": newer["id"]}, expect=200
    )
    assert closed["status"] == "closed"
    [event] = await event_tap.wait("tickets.ticket.closed")
    assert event["data"]["closed_by_name"] == "Oscar Operador"
    pool = desk.tickets.server.app[POOL]
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE routing_key LIKE '%closed'") == 1


async def test_a_close_takes_no_body_an_empty_object_or_json_null_fields(desk):
    client = await desk.new_client()
    for payload in ({}, {"json": {}}, {"json": {"if_last_message_id": None}}):
        n = (await desk.open(client, allow_duplicate=True))["number"]
        _, closed = await _close(desk, n, client["headers"], expect=200, **payload)
        assert closed["status"] == "closed"
    n = (await desk.open(client, allow_duplicate=True))["number"]
    for payload in ({"json": {"motivo": "x"}}, {"json": {"if_last_message_id": "x"}}):
        status, problem = await _close(desk, n, client["headers"], **payload)
        assert status == 422, problem
    status, problem = await _close(desk, n, client["headers"], data="no json")
    assert status == 415, problem
