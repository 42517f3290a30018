"""Internal notes (SPEC 9.2): operators' own, never the client's to see."""

from shared.resources import POOL

NOTE = "Cliente moroso: no prometer plazos. Palabra clave zanahoria."


async def _note(desk, number, who, body=NOTE, **kw):
    return await desk.call("POST", f"/v1/tickets/{number}/notes", who, json={"body": body}, **kw)


async def test_operator_sees_the_note_oldest_first_among_the_ticket(desk):
    client = await desk.new_client()
    ticket = await desk.open(client)
    n = ticket["number"]
    _, first = await _note(desk, n, desk.operator, expect=201)
    assert first["author"] == {"kind": "operator", "name": "Oscar Operador"}
    assert first["body"] == NOTE
    assert set(first) == {"id", "author", "body", "created_at"}
    _, second = await _note(desk, n, desk.admin, "Segunda nota", expect=201)
    _, view = await desk.get(n, desk.operator, expect=200)
    assert view["notes"] == [first, second]
    assert [m["body"] for m in view["messages"]] == ["No puedo enviar correos."]


async def test_a_note_never_reaches_the_client(desk):
    client = await desk.new_client()
    me = client["headers"]
    n = (await desk.open(client, body="Mi correo no funciona."))["number"]
    await _note(desk, n, desk.operator, expect=201)
    # The ticket: no notes field at all, nor the assignee.
    _, view = await desk.get(n, me, expect=200)
    assert "notes" not in view and "assignee" not in view
    assert NOTE not in str(view)
    # The list: the excerpt is still the last message's, and there is no assignee.
    _, page = await desk.list_page(me)
    [item] = page["items"]
    assert item["excerpt"] == "Mi correo no funciona."
    assert "assignee" not in item
    _, page = await desk.list_page(desk.operator)
    assert page["items"][0]["excerpt"] == "Mi correo no funciona."
    # The client's search does not find the note's words.
    assert await desk.numbers(me, q="zanahoria") == []
    assert await desk.numbers(me, q="correo") == [n]


async def test_operators_search_finds_messages_not_notes(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await _note(desk, n, desk.operator, expect=201)
    assert await desk.numbers(desk.operator, q="zanahoria") == []
    assert await desk.numbers(desk.operator, q="enviar correos") == [n]


async def test_a_note_changes_neither_status_nor_activity(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.reply(n, desk.operator, expect=201)
    _, before = await desk.get(n, client["headers"], expect=200)
    await _note(desk, n, desk.operator, expect=201)
    _, after = await desk.get(n, client["headers"], expect=200)
    assert after == before
    assert after["status"] == "answered"


async def test_a_client_cannot_write_a_note(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    status, problem = await _note(desk, n, client["headers"])
    assert status == 403, problem
    pool = desk.tickets.server.app[POOL]
    assert await pool.fetchval("SELECT count(*) FROM notes") == 0


async def test_a_note_on_an_unknown_ticket_is_404_and_a_bad_one_422(desk):
    status, _ = await _note(desk, 999_999, desk.operator)
    assert status == 404
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    for body in ({"body": ""}, {"body": "   "}, {}, {"body": "x", "extra": 1}):
        status, problem = await desk.call(
            "POST", f"/v1/tickets/{n}/notes", desk.operator, json=body
        )
        assert status == 422, problem


async def test_a_note_is_published_without_its_text(desk, event_tap):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    _, note = await _note(desk, n, desk.operator | {"X-Request-ID": "note-1"}, expect=201)
    [event] = await event_tap.wait("tickets.ticket.noted")
    assert event["data"] == {
        "number": n,
        "client_number": client["client_number"],
        "note_id": note["id"],
        "author_name": "Oscar Operador",
    }
    [message] = [m for m in event_tap.messages if m.routing_key == "tickets.ticket.noted"]
    assert message.correlation_id == "note-1"
    assert "zanahoria" not in message.body.decode()
    pool = desk.tickets.server.app[POOL]
    aggregate = await pool.fetchval(
        "SELECT aggregate FROM outbox WHERE routing_key = 'tickets.ticket.noted'"
    )
    assert aggregate == f"ticket:{n}"
