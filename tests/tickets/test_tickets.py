"""Tickets through the HTTP API: creation, validation, the duplicate guard, every status
transition, bodies kept as written, and isolation between clients."""

import asyncio
from datetime import datetime

import pytest


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    return parsed


# --- creation ------------------------------------------------------------------------------------


async def test_create_answers_the_ticket_with_location(desk):
    client = await desk.new_client()
    category = await desk.category("Dominios y DNS")
    service = client["services"][0]
    response = await desk.tickets.post(
        "/v1/tickets",
        json={"service_id": service["id"], "category_id": category, "body": "El DNS no resuelve."},
        headers=client["headers"],
    )
    assert response.status == 201, await response.text()
    ticket = await response.json()
    assert response.headers["Location"] == f"/v1/tickets/{ticket['number']}"
    assert isinstance(ticket["number"], int) and ticket["number"] > 0
    assert ticket["client_number"] == client["client_number"]
    assert ticket["service"] == {"id": service["id"], "name": service["name"]}
    assert ticket["category"] == {"id": category, "name": "Dominios y DNS"}
    assert ticket["subject"] == "Dominios y DNS"
    assert ticket["status"] == "open"
    assert _time(ticket["created_at"]) <= _time(ticket["updated_at"])
    [message] = ticket["messages"]
    assert message["body"] == "El DNS no resuelve."
    assert message["author"] == {"kind": "client", "name": client["name"]}
    assert isinstance(message["id"], int)
    _time(message["created_at"])
    # What Location points at is the same ticket.
    _, fetched = await desk.get(ticket["number"], client["headers"], expect=200)
    assert fetched == ticket


async def test_numbers_are_positive_unique_and_increasing(desk):
    client = await desk.new_client(services=("Hosting", "Correo"))
    numbers = []
    for service in client["services"]:
        for name in ("Correo electrónico", "Facturación"):
            status, ticket = await desk.create(
                client, service_id=service["id"], category_id=await desk.category(name)
            )
            assert status == 201, ticket
            numbers.append(ticket["number"])
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert numbers[0] > 0


async def test_messages_are_oldest_first(desk):
    client = await desk.new_client()
    ticket = await desk.open(client, body="uno")
    n = ticket["number"]
    await desk.reply(n, desk.operator, "dos", expect=201)
    await desk.reply(n, client["headers"], "tres", expect=201)
    await desk.reply(n, desk.admin, "cuatro", expect=201)
    _, full = await desk.get(n, client["headers"], expect=200)
    assert [m["body"] for m in full["messages"]] == ["uno", "dos", "tres", "cuatro"]
    assert [m["author"]["kind"] for m in full["messages"]] == [
        "client",
        "operator",
        "client",
        "operator",
    ]
    assert full["messages"][1]["author"]["name"] == "Oscar Operador"
    times = [_time(m["created_at"]) for m in full["messages"]]
    assert times == sorted(times)


async def test_another_clients_service_is_422(desk):
    alice = await desk.new_client("Alicia")
    bob = await desk.new_client("Roberto")
    status, body = await desk.create(alice, service_id=bob["services"][0]["id"])
    assert status == 422, body
    assert [e["field"] for e in body["errors"]] == ["service_id"]
    status, body = await desk.create(alice, service_id=10**12)
    assert status == 422, body
    _, page = await desk.list_page(desk.operator)
    assert page["items"] == []


async def test_unknown_category_is_422(desk):
    client = await desk.new_client()
    status, body = await desk.create(client, category_id=10**12)
    assert status == 422, body
    assert [e["field"] for e in body["errors"]] == ["category_id"]


@pytest.mark.parametrize(
    "change",
    [
        {"body": ""},
        {"body": "   "},
        {"body": " \n\t \r\n"},
        {"body": "x" * 20_001},
        {"body": None},
        {"body": 12},
        {"priority": "high"},
        {"service_id": 0},
        {"service_id": -1},
        {"category_id": "correo"},
        {"allow_duplicate": "maybe"},
        {"body": "nul \x00 inside"},
        {"body": "lone surrogate \ud800"},
    ],
    ids=lambda c: repr(c)[:30],
)
async def test_invalid_input_is_422_with_errors(desk, change):
    client = await desk.new_client()
    status, body = await desk.create(client, **change)
    assert status == 422, body
    assert body["status"] == 422 and body["errors"]
    assert {e["field"] for e in body["errors"]} & set(change), body


async def test_a_body_over_1_mib_is_413(desk):
    client = await desk.new_client()
    status, body = await desk.create(client, body="x" * (1024 * 1024 + 10))
    assert status == 413, body


async def test_the_duplicate_guard_holds_under_concurrent_requests(desk):
    client = await desk.new_client()
    results = await asyncio.gather(*(desk.create(client) for _ in range(6)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 5, results
    [created] = [body for status, body in results if status == 201]
    assert all(
        body["open_ticket"] == created["number"] for status, body in results if status == 409
    )
    assert await desk.numbers(client["headers"]) == [created["number"]]


async def test_missing_fields_are_422(desk):
    client = await desk.new_client()
    status, body = await desk.call("POST", "/v1/tickets", client["headers"], json={})
    assert status == 422
    assert {"service_id", "category_id", "body"} <= {e["field"] for e in body["errors"]}


async def test_body_of_20000_chars_is_accepted_and_kept(desk):
    client = await desk.new_client()
    body = "ñ" * 19_999 + "🙂"
    ticket = await desk.open(client, body=body)
    assert ticket["messages"][0]["body"] == body
    await desk.reply(ticket["number"], client["headers"], "a" * 20_001, expect=422)


async def test_not_json_is_415_and_operators_cannot_open_tickets(desk):
    client = await desk.new_client()
    await desk.call("POST", "/v1/tickets", client["headers"], data="body=hola", expect=415)
    _status, _body = await desk.call(
        "POST",
        "/v1/tickets",
        client["headers"] | {"Content-Type": "application/json"},
        data="{not json",
        expect=422,
    )
    payload = {"service_id": client["services"][0]["id"], "category_id": 1, "body": "x"}
    for who in (desk.operator, desk.admin):
        await desk.call("POST", "/v1/tickets", who, json=payload, expect=403)
    await desk.call("POST", "/v1/tickets", {}, json=payload, expect=401)


@pytest.mark.parametrize(
    "body",
    [
        "  espacios delante y detrás  ",
        "línea 1\nlínea 2\r\n\nlínea 4\n",
        "<script>alert('x')</script> & <b>negrita</b> &amp;",
        "Ünïcödé: 日本語, emoji 👩‍💻, RTL שלום, combining e\u0301",
        "\ttabulado",
    ],
)
async def test_bodies_are_kept_exactly_as_written(desk, body):
    client = await desk.new_client()
    ticket = await desk.open(client, body=body)
    n = ticket["number"]
    _, message = await desk.reply(n, desk.operator, body, expect=201)
    assert message["body"] == body
    await desk.close(n, client["headers"], expect=200)
    _, reopened = await desk.reopen(n, client["headers"], body, expect=200)
    _, full = await desk.get(n, desk.operator, expect=200)
    assert [m["body"] for m in full["messages"]] == [body, body, body]
    # The operator's view adds what only operators see.
    assert reopened == {k: v for k, v in full.items() if k not in ("assignee", "notes")}


# --- the duplicate guard -------------------------------------------------------------------------


async def test_duplicate_is_409_with_open_ticket(desk):
    client = await desk.new_client()
    first = await desk.open(client)
    status, body = await desk.create(client, body="Otra vez el correo.")
    assert status == 409, body
    assert body["open_ticket"] == first["number"]
    assert body["status"] == 409 and str(first["number"]) in body["detail"]
    assert await desk.numbers(client["headers"]) == [first["number"]]


@pytest.mark.parametrize("status_of_first", ["open", "answered", "customer_reply"])
async def test_duplicate_guard_holds_for_every_status_but_closed(desk, status_of_first):
    client = await desk.new_client()
    first = await desk.open(client)
    n = first["number"]
    if status_of_first == "answered":
        await desk.reply(n, desk.operator, expect=201)
    elif status_of_first == "customer_reply":
        await desk.reply(n, desk.operator, expect=201)
        await desk.reply(n, client["headers"], expect=201)
    status, body = await desk.create(client)
    assert status == 409 and body["open_ticket"] == n


async def test_allow_duplicate_opens_another(desk):
    client = await desk.new_client()
    first = await desk.open(client)
    status, second = await desk.create(client, allow_duplicate=True)
    assert status == 201, second
    assert second["number"] > first["number"]
    # A third one without the flag points at the oldest one still open.
    status, body = await desk.create(client)
    assert status == 409 and body["open_ticket"] == first["number"]


async def test_once_the_first_is_closed_a_new_one_is_allowed(desk):
    client = await desk.new_client()
    first = await desk.open(client)
    await desk.close(first["number"], desk.operator, expect=200)
    status, second = await desk.create(client)
    assert status == 201, second
    # Reopening the first makes two open ones: the guard is about opening, not reopening.
    await desk.reopen(first["number"], client["headers"], expect=200)
    status, body = await desk.create(client)
    assert status == 409 and body["open_ticket"] == first["number"]


async def test_a_different_category_or_service_is_not_a_duplicate(desk):
    client = await desk.new_client(services=("Hosting Linux Plus", "Dominio example.com"))
    _hosting, domain = client["services"]
    await desk.open(client)
    status, body = await desk.create(client, category_id=await desk.category("Facturación"))
    assert status == 201, body
    status, body = await desk.create(client, service_id=domain["id"])
    assert status == 201, body
    assert body["service"] == domain


async def test_another_clients_open_ticket_is_not_a_duplicate(desk):
    alice = await desk.new_client("Alicia")
    bob = await desk.new_client("Roberto")
    await desk.open(alice)
    status, body = await desk.create(bob)
    assert status == 201, body


# --- every status transition over HTTP ---------------------------------------------------------


async def test_the_full_lifecycle(desk):
    client = await desk.new_client()
    me = client["headers"]
    n = (await desk.open(client))["number"]

    async def status() -> str:
        _, ticket = await desk.get(n, me, expect=200)
        return ticket["status"]

    assert await status() == "open"
    _, message = await desk.reply(n, me, "¿Alguien?", expect=201)
    assert message["author"] == {"kind": "client", "name": client["name"]}
    assert message["body"] == "¿Alguien?" and isinstance(message["id"], int)
    assert await status() == "customer_reply"  # open -> customer_reply
    await desk.reply(n, desk.operator, "Mirándolo.", expect=201)
    assert await status() == "answered"  # customer_reply -> answered
    await desk.reply(n, desk.operator, "Sigo.", expect=201)
    assert await status() == "answered"  # answered -> answered
    await desk.reply(n, me, "Gracias.", expect=201)
    assert await status() == "customer_reply"  # answered -> customer_reply
    await desk.reply(n, me, "Y otra cosa.", expect=201)
    assert await status() == "customer_reply"  # customer_reply -> customer_reply
    _, closed = await desk.close(n, me, expect=200)
    assert closed["status"] == "closed"  # customer_reply -> closed by owner
    _, reopened = await desk.reopen(n, me, "Vuelve a fallar.", expect=200)
    assert reopened["status"] == "open"  # closed -> open
    assert reopened["messages"][-1]["body"] == "Vuelve a fallar."
    assert reopened["messages"][-1]["author"]["kind"] == "client"
    _, closed = await desk.close(n, desk.operator, expect=200)
    assert closed["status"] == "closed"  # open -> closed by operator
    await desk.reply(n, desk.operator, "Una nota tras el cierre.", expect=201)
    assert await status() == "answered"  # closed -> answered by operator
    _, closed = await desk.close(n, desk.admin, expect=200)
    assert closed["status"] == "closed"  # answered -> closed by an admin
    assert len(closed["messages"]) == 8
    # Each closing is a line of the conversation, with who closed it.
    assert [(c["by"], c["name"]) for c in closed["closures"]] == [
        ("client", None),
        ("operator", "Oscar Operador"),
        ("operator", "Ada Admin"),
    ]
    at = [datetime.fromisoformat(m["created_at"]) for m in closed["messages"]]
    assert at[5] <= datetime.fromisoformat(closed["closures"][0]["at"]) <= at[6]


async def test_operator_reply_to_an_open_ticket_answers_it(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.reply(n, desk.operator, expect=201)
    _, ticket = await desk.get(n, client["headers"])
    assert ticket["status"] == "answered"


async def test_client_reply_to_a_closed_ticket_is_409(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.close(n, client["headers"], expect=200)
    _, body = await desk.reply(n, client["headers"], expect=409)
    assert body["status"] == 409 and "reopen" in body["detail"]
    _, ticket = await desk.get(n, client["headers"])
    assert ticket["status"] == "closed" and len(ticket["messages"]) == 1


@pytest.mark.parametrize("status_before", ["open", "answered", "customer_reply"])
async def test_reopen_of_a_ticket_that_is_not_closed_is_409(desk, status_before):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    if status_before != "open":
        await desk.reply(n, desk.operator, expect=201)
    if status_before == "customer_reply":
        await desk.reply(n, client["headers"], expect=201)
    await desk.reopen(n, client["headers"], expect=409)
    _, ticket = await desk.get(n, client["headers"])
    assert (
        ticket["status"] == status_before
        and len(ticket["messages"])
        == {
            "open": 1,
            "answered": 2,
            "customer_reply": 3,
        }[status_before]
    )


async def test_operators_cannot_reopen(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.close(n, client["headers"], expect=200)
    for who in (desk.operator, desk.admin):
        _, body = await desk.reopen(n, who, expect=403)
        assert body["status"] == 403
    _, ticket = await desk.get(n, client["headers"])
    assert ticket["status"] == "closed"


@pytest.mark.parametrize("body", [None, {}, {"body": ""}, {"body": "  \n "}, {"text": "hola"}])
async def test_reopen_needs_text(desk, body):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.close(n, client["headers"], expect=200)
    kw = {} if body is None else {"json": body}
    status, problem = await desk.call("POST", f"/v1/tickets/{n}/reopen", client["headers"], **kw)
    assert status in (415, 422) if body is None else status == 422, problem
    _, ticket = await desk.get(n, client["headers"])
    assert ticket["status"] == "closed"


async def test_closing_a_closed_ticket_is_409(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.close(n, desk.operator, expect=200)
    await desk.close(n, client["headers"], expect=409)
    await desk.close(n, desk.operator, expect=409)


async def test_a_ticket_that_does_not_exist_is_404(desk):
    client = await desk.new_client()
    for who in (client["headers"], desk.operator):
        for n in (0, 999_999, 10**30):
            await desk.get(n, who, expect=404)
            await desk.reply(n, who, expect=404)
            await desk.close(n, who, expect=404)
        await desk.reopen(999_999, client["headers"], expect=404)
    await desk.call("GET", "/v1/tickets/abc", desk.operator, expect=404)


async def test_routes_need_a_token(desk):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    await desk.get(n, {}, expect=401)
    await desk.reply(n, {}, expect=401)
    await desk.reopen(n, {}, expect=401)
    await desk.close(n, {}, expect=401)
    await desk.list_page({})
    status, _ = await desk.list_page({})
    assert status == 401


# --- isolation between clients -----------------------------------------------------------------


async def test_another_clients_ticket_is_404_everywhere(desk):
    alice = await desk.new_client("Alicia")
    bob = await desk.new_client("Roberto")
    mine = (await desk.open(alice, body="secreto de Alicia"))["number"]
    closed = (await desk.open(alice, allow_duplicate=True))["number"]
    await desk.close(closed, alice["headers"], expect=200)
    theirs = bob["headers"]

    for n in (mine, closed):
        _, body = await desk.get(n, theirs, expect=404)
        assert "Alicia" not in str(body) and "secreto" not in str(body)
        await desk.reply(n, theirs, expect=404)
        await desk.reopen(n, theirs, expect=404)
        await desk.close(n, theirs, expect=404)
    # Nothing of theirs was added to Alicia's tickets, nor their status changed.
    for n, status in ((mine, "open"), (closed, "closed")):
        _, ticket = await desk.get(n, alice["headers"], expect=200)
        assert len(ticket["messages"]) == 1 and ticket["status"] == status
    # The same answer as for a number that does not exist at all.
    _, missing = await desk.get(10**9, theirs, expect=404)
    _, foreign = await desk.get(mine, theirs, expect=404)
    assert missing == foreign

    assert await desk.numbers(theirs) == []
    assert await desk.numbers(theirs, q="secreto") == []
    assert await desk.numbers(theirs, status="open,closed") == []
    # Nothing changed on Alicia's tickets.
    _, ticket = await desk.get(mine, alice["headers"], expect=200)
    assert ticket["status"] == "open" and len(ticket["messages"]) == 1
    _, ticket = await desk.get(closed, alice["headers"], expect=200)
    assert ticket["status"] == "closed"


async def test_each_client_lists_only_their_own_and_operator_sees_all(desk):
    alice = await desk.new_client("Alicia")
    bob = await desk.new_client("Roberto")
    a1 = (await desk.open(alice))["number"]
    b1 = (await desk.open(bob))["number"]
    a2 = (await desk.open(alice, allow_duplicate=True))["number"]
    assert sorted(await desk.all_numbers(alice["headers"])) == [a1, a2]
    assert await desk.all_numbers(bob["headers"]) == [b1]
    for who in (desk.operator, desk.admin):
        assert sorted(await desk.all_numbers(who)) == sorted([a1, a2, b1])
        for n in (a1, a2, b1):
            await desk.get(n, who, expect=200)


async def test_a_client_filtering_by_client_number_is_403(desk):
    alice = await desk.new_client("Alicia")
    bob = await desk.new_client("Roberto")
    await desk.open(bob)
    for number in (bob["client_number"], alice["client_number"]):
        status, body = await desk.list_page(alice["headers"], client_number=number)
        assert status == 403, body


async def test_concurrent_closes_close_once(desk, event_tap):
    client = await desk.new_client()
    n = (await desk.open(client))["number"]
    results = await asyncio.gather(
        desk.close(n, client["headers"]), desk.close(n, desk.operator), desk.close(n, desk.admin)
    )
    assert sorted(status for status, _ in results) == [200, 409, 409], results
    await event_tap.wait("tickets.ticket.created")
    await event_tap.wait("tickets.ticket.closed")
    _, ticket = await desk.get(n, client["headers"], expect=200)
    assert ticket["status"] == "closed"
