"""A form sent twice (a double click, or sent again after an error page) adds its text once: each
drawing of a form carries a one-time id that the panel passes to tickets as Idempotency-Key."""

import re

from tests.support import stack
from tests.support.panel import Visitor
from tests.tickets.conftest import Desk

_SUBMISSION = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(?:(?!</form>).)*?'
                         r'name="submission" value="([0-9a-f]{32})"', re.S)  # fmt: skip


def submissions(html: str) -> dict[str, str]:
    """Form action -> the one-time id of its drawing."""
    return {action: sid for action, sid in _SUBMISSION.findall(html)}


async def signed_in_client(visitor: Visitor, desk: Desk) -> dict:
    client = await desk.new_client()
    await visitor.login(client["client_number"], stack.CLIENT_PASSWORD)
    return client


async def bodies(desk: Desk, number: int) -> list[str]:
    _, ticket = await desk.get(number, desk.operator, expect=200)
    return [m["body"] for m in ticket["messages"]]


async def test_a_reply_form_sent_twice_adds_the_reply_once(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    n = (await desk.open(client))["number"]
    _, page = await visitor.get(f"/tickets/{n}")
    sid = submissions(page)[f"/tickets/{n}/reply"]
    for _ in range(2):
        status, html = await visitor.post(
            f"/tickets/{n}/reply", {"body": "Gracias", "submission": sid}
        )
        assert status == 200 and "Su respuesta fue agregada al ticket." in html
    assert await bodies(desk, n) == ["No puedo enviar correos.", "Gracias"]
    # The form drawn again is a new one: the same words sent from it are a new reply.
    _, page = await visitor.get(f"/tickets/{n}")
    again = submissions(page)[f"/tickets/{n}/reply"]
    assert again != sid
    await visitor.post(f"/tickets/{n}/reply", {"body": "Gracias", "submission": again})
    assert await bodies(desk, n) == ["No puedo enviar correos.", "Gracias", "Gracias"]


async def test_a_new_ticket_form_sent_twice_opens_one_ticket(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    _, page = await visitor.get("/tickets/new")
    form = {
        "service_id": str(client["services"][0]["id"]),
        "category_id": str(await desk.category()),
        "body": "La web no carga",
        "submission": submissions(page)["/tickets/new"],
    }
    for _ in range(2):  # without the id the second would say a ticket is already open
        status, html = await visitor.post("/tickets/new", form)
        assert status == 200 and "Su ticket fue abierto." in html
    assert len(await desk.numbers(client["headers"])) == 1


async def test_a_reopen_form_sent_twice_reopens_once(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    n = (await desk.open(client))["number"]
    await desk.close(n, desk.operator, expect=200)
    _, page = await visitor.get(f"/tickets/{n}")
    sid = submissions(page)[f"/tickets/{n}/reopen"]
    for _ in range(2):
        status, _ = await visitor.post(f"/tickets/{n}/reopen", {"body": "Sigue", "submission": sid})
        assert status == 200
    assert await bodies(desk, n) == ["No puedo enviar correos.", "Sigue"]


async def test_a_forged_submission_id_is_ignored(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    n = (await desk.open(client))["number"]
    await visitor.get(f"/tickets/{n}")
    for forged in ("not-an-id", "x" * 5000):
        status, html = await visitor.post(
            f"/tickets/{n}/reply", {"body": "Hola", "submission": forged}
        )
        assert status == 200 and "Su respuesta fue agregada al ticket." in html
    assert await bodies(desk, n) == ["No puedo enviar correos.", "Hola", "Hola"]


async def test_a_form_sent_again_with_other_text_says_so(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    n = (await desk.open(client))["number"]
    _, page = await visitor.get(f"/tickets/{n}")
    sid = submissions(page)[f"/tickets/{n}/reply"]
    await visitor.post(f"/tickets/{n}/reply", {"body": "Primero", "submission": sid})
    status, html = await visitor.post(f"/tickets/{n}/reply", {"body": "Otro", "submission": sid})
    assert status == 409
    assert "Este formulario ya se había enviado" in html
    assert "Otro</textarea>" in html  # kept, to send again from the form drawn anew
    assert submissions(html)[f"/tickets/{n}/reply"] != sid
    assert await bodies(desk, n) == ["No puedo enviar correos.", "Primero"]
    # The same for a new ticket.
    _, page = await visitor.get("/tickets/new")
    form = {
        "service_id": str(client["services"][0]["id"]),
        "category_id": str(await desk.category("Facturación")),
        "body": "Una factura",
        "submission": submissions(page)["/tickets/new"],
    }
    await visitor.post("/tickets/new", form)
    status, html = await visitor.post("/tickets/new", form | {"body": "Otra factura"})
    assert status == 409 and "Este formulario ya se había enviado" in html
    assert len(await desk.numbers(client["headers"])) == 2
