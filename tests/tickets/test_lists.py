"""GET /v1/tickets: filters, search, order, the operator queue and cursor pagination."""

import asyncio
import base64
import json

import pytest

from tests.support.waiting import wait_for


async def _tickets(desk, client, count, **kw):
    """`count` tickets of the client (duplicates allowed), oldest first."""
    return [
        (await desk.open(client, body=f"Consulta {i}", allow_duplicate=True, **kw))["number"]
        for i in range(count)
    ]


async def test_status_filter_takes_a_comma_list(desk):
    client = await desk.new_client()
    me = client["headers"]
    opened, answered, replied, closed = await _tickets(desk, client, 4)
    await desk.reply(answered, desk.operator, expect=201)
    await desk.reply(replied, me, expect=201)
    await desk.close(closed, me, expect=200)
    for who in (me, desk.operator):
        assert await desk.numbers(who, status="open") == [opened]
        assert await desk.numbers(who, status="answered") == [answered]
        assert await desk.numbers(who, status="closed") == [closed]
        assert sorted(await desk.numbers(who, status="open,customer_reply")) == [opened, replied]
        assert sorted(await desk.numbers(who, status="closed,answered,closed")) == [
            answered,
            closed,
        ]
        assert sorted(await desk.numbers(who)) == [opened, answered, replied, closed]


@pytest.mark.parametrize("status", ["", "pending", "open,", "open,pending", "OPEN", "open closed"])
async def test_an_unknown_status_is_422(desk, status):
    status_code, body = await desk.list_page(desk.operator, status=status)
    assert status_code == 422, body
    assert [e["field"] for e in body["errors"]] == ["status"]


async def test_operator_filters_by_client(desk):
    alice = await desk.new_client("Alicia")
    bob = await desk.new_client("Roberto")
    a = await _tickets(desk, alice, 2)
    b = await _tickets(desk, bob, 1)
    assert sorted(await desk.numbers(desk.operator, client_number=alice["client_number"])) == a
    assert await desk.numbers(desk.operator, client_number=bob["client_number"]) == b
    assert await desk.numbers(desk.operator, client_number="99999999") == []
    padded = "00" + bob["client_number"]  # as a client number may be typed, and logs in
    assert await desk.numbers(desk.operator, client_number=padded) == b
    both = await desk.numbers(desk.operator, client_number=bob["client_number"], status="closed")
    assert both == []
    for bad in ("abc", "", "1" * 19, "-1"):
        status, body = await desk.list_page(desk.operator, client_number=bad)
        assert status == 422, body


async def test_full_text_search_in_spanish(desk):
    alice = await desk.new_client("Alicia")
    bob = await desk.new_client("Roberto")
    billing = (await desk.open(alice, body="Tengo una duda sobre la Facturación de marzo."))[
        "number"
    ]
    domain = (
        await desk.open(
            alice, body="Quiero transferir mi dominio.", category_id=await desk.category("Otros")
        )
    )["number"]
    other = (await desk.open(bob, body="El correo no llega."))["number"]
    # The operator's answer is searchable too.
    await desk.reply(other, desk.operator, "Revise los registros MX del DNS.", expect=201)

    async def search(q, who=desk.operator):
        return sorted(await desk.numbers(who, q=q))

    assert await search("facturacion") == [billing]
    assert await search("FACTURACIÓN") == [billing]
    assert await search("dominios") == [domain]
    assert await search("registros") == [other]
    assert await search("correo") == [other]
    assert await search("inexistente") == []
    assert await search("dominio OR correo") == sorted([domain, other])
    assert await search('"transferir mi dominio"') == [domain]
    # q combines with the other filters.
    assert await desk.numbers(desk.operator, q="dominio", client_number=bob["client_number"]) == []
    assert await desk.numbers(desk.operator, q="facturacion", status="closed") == []
    # A client may search, and finds only their own tickets.
    assert await search("facturacion", alice["headers"]) == [billing]
    assert await search("correo", alice["headers"]) == []
    assert await search("correo", bob["headers"]) == [other]
    # Odd queries are no errors.
    for q in ("de la", "!!!", "a & | b", "'", '"', "(-)", "dominio:*"):
        status, body = await desk.list_page(desk.operator, q=q)
        assert status == 200, (q, body)
    status, body = await desk.list_page(desk.operator, q="")
    assert status == 422, body


async def test_newest_activity_first_and_a_reply_moves_a_ticket_to_the_front(desk):
    client = await desk.new_client()
    me = client["headers"]
    first, second, third = await _tickets(desk, client, 3)
    assert await desk.numbers(me) == [third, second, first]
    await desk.reply(first, me, expect=201)
    assert await desk.numbers(me) == [first, third, second]
    await desk.reply(second, desk.operator, expect=201)
    assert await desk.numbers(desk.operator) == [second, first, third]
    await desk.close(third, desk.operator, expect=200)
    assert await desk.numbers(me) == [third, second, first]


async def test_sort_waiting_is_the_operator_queue(desk):
    client = await desk.new_client()
    me = client["headers"]
    t1, t2, t3, t4 = await _tickets(desk, client, 4)
    assert await desk.numbers(desk.operator, sort="waiting") == [t1, t2, t3, t4]
    # Answered: out of the queue; the client's next reply puts it at the back.
    await desk.reply(t1, desk.operator, expect=201)
    assert await desk.numbers(desk.operator, sort="waiting") == [t2, t3, t4]
    await desk.reply(t1, me, expect=201)
    # A client's reply to a ticket still waiting keeps its place (it waited since it opened).
    await desk.reply(t2, me, expect=201)
    await desk.close(t3, me, expect=200)
    assert await desk.numbers(desk.operator, sort="waiting") == [t2, t4, t1]
    # Reopened: waiting again, from now.
    await desk.reopen(t3, me, expect=200)
    assert await desk.numbers(desk.operator, sort="waiting") == [t2, t4, t1, t3]
    assert await desk.numbers(desk.operator, sort="waiting", status="customer_reply") == [t2, t1]
    # Pages of the queue keep its order.
    assert await desk.all_numbers(desk.operator, sort="waiting", limit=1) == [t2, t4, t1, t3]
    status, body = await desk.list_page(desk.operator, sort="oldest")
    assert status == 422, body


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
async def test_limit_out_of_bounds_is_422(desk, limit):
    status, body = await desk.list_page(desk.operator, limit=limit)
    assert status == 422, body
    assert [e["field"] for e in body["errors"]] == ["limit"]


async def test_limit_bounds_and_default(desk):
    client = await desk.new_client()
    numbers = await _tickets(desk, client, 22)
    _, page = await desk.list_page(desk.operator)
    assert len(page["items"]) == 20 and page["next_cursor"]
    _, page = await desk.list_page(desk.operator, limit=100)
    assert len(page["items"]) == 22 and page["next_cursor"] is None
    _, page = await desk.list_page(desk.operator, limit=1)
    assert [t["number"] for t in page["items"]] == [numbers[-1]]
    _, page = await desk.list_page(desk.operator, limit=22)
    assert len(page["items"]) == 22 and page["next_cursor"] is None


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "x" * 201,
        _cursor({"a": 1}),
        _cursor(["2026-01-01T00:00:00+00:00"]),
        _cursor(["2026-01-01T00:00:00+00:00", "7"]),
        _cursor(["2026-01-01T00:00:00+00:00", -1]),
        _cursor(["2026-01-01T00:00:00+00:00", 2**63]),
        _cursor(["2026-01-01T00:00:00+00:00", True]),
        _cursor(["not a date", 7]),
        _cursor([None, 7]),
        # Times that do not fit in UTC, which PostgreSQL cannot take.
        _cursor(["0001-01-01T00:00:00+01:00", 7]),
        _cursor(["9999-12-31T23:59:59-10:00", 7]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
async def test_a_bad_cursor_is_422(desk, cursor):
    for sort in ("activity", "waiting"):
        status, body = await desk.list_page(desk.operator, cursor=cursor, sort=sort)
        assert status == 422, body
        assert body["errors"]


@pytest.mark.parametrize("when", ["2026-01-01T00:00:00", "0001-01-01T00:00:00", "2026-01-01"])
async def test_a_forged_but_possible_cursor_is_a_page(desk, when):
    client = await desk.new_client()
    await desk.open(client)
    status, body = await desk.list_page(desk.operator, cursor=_cursor([when, 1]))
    assert status == 200, body


async def test_list_items_have_an_excerpt_and_no_messages(desk):
    client = await desk.new_client()
    n = (await desk.open(client, body="Primera línea\ncon   saltos.\n"))["number"]
    _, page = await desk.list_page(client["headers"])
    [item] = page["items"]
    assert "messages" not in item
    assert item["excerpt"] == "Primera línea con saltos."
    assert set(item) == {
        "number",
        "client_number",
        "service",
        "category",
        "subject",
        "status",
        "created_at",
        "updated_at",
        "summary",
        "excerpt",
    }
    assert item["subject"] == "Correo electrónico" and item["status"] == "open"
    # The excerpt is the start of the last message.
    await desk.reply(n, desk.operator, "Respuesta " + "larga " * 100, expect=201)
    _, page = await desk.list_page(desk.operator)
    excerpt = page["items"][0]["excerpt"]
    assert excerpt.startswith("Respuesta larga") and excerpt.endswith("…")
    assert len(excerpt) <= 160
    await desk.close(n, client["headers"], expect=200)
    _, page = await desk.list_page(client["headers"])
    assert page["items"][0]["excerpt"] == excerpt
    await desk.reopen(n, client["headers"], "Reabierto.", expect=200)
    _, page = await desk.list_page(client["headers"])
    assert page["items"][0]["excerpt"] == "Reabierto."


@pytest.mark.parametrize("sort", ["activity", "waiting"])
async def test_pagination_is_stable_while_tickets_are_added(desk, sort):
    alice = await desk.new_client("Alicia")
    bob = await desk.new_client("Roberto")
    existing = await _tickets(desk, alice, 15) + await _tickets(desk, bob, 15)
    paging_done = asyncio.Event()
    added: list[int] = []

    async def keep_adding() -> None:
        who = (alice, bob)
        while not paging_done.is_set():
            client = who[len(added) % 2]
            added.append((await desk.open(client, allow_duplicate=True))["number"])

    def added_at_least(count: int):
        return lambda: len(added) >= count

    async def page_through(**params) -> list[int]:
        try:
            seen: list[int] = []
            cursor = None
            while True:
                page = params | {"limit": 4, "sort": sort} | ({"cursor": cursor} if cursor else {})
                status, body = await desk.list_page(desk.operator, **page)
                assert status == 200, body
                seen += [t["number"] for t in body["items"]]
                # The writer adds tickets between pages.
                await wait_for(added_at_least(len(seen) // 4), message="tickets added")
                cursor = body["next_cursor"]
                if cursor is None:
                    return seen
        finally:
            paging_done.set()

    adder = asyncio.create_task(keep_adding())
    seen = await page_through()
    await adder
    assert added, "no ticket was added while paging"
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert set(existing) <= set(seen), f"skipped: {sorted(set(existing) - set(seen))}"
    expected_order = sorted(seen, reverse=sort == "activity")
    assert seen == expected_order
