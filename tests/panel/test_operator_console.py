"""The operator's ticket page and queue (SPEC 9.4) through a plain HTTP client, against the real
services: notes, assignment, the collision guard, a confirmed close, the queue's filters."""

import re

from tests.panel.test_pages import has_label, signed_in_client
from tests.support import stack
from tests.support.panel import Visitor
from tests.tickets.conftest import Desk

NOTE = "El cliente debe la factura de octubre"


async def test_a_note_is_for_operators_only(visitor: Visitor, desk: Desk) -> None:
    client = await desk.new_client()
    ticket = await desk.open(client)
    page = f"/tickets/{ticket['number']}"
    await visitor.login(*stack.OPERATOR)
    status, html = await visitor.get(page)
    assert has_label(html, "Nota interna") and ">Agregar nota</button>" in html
    status, html = await visitor.post(page + "/notes", {"note": "  "})
    assert status == 422 and "Este campo es obligatorio." in html
    status, html = await visitor.post(page + "/notes", {"note": NOTE})
    assert status == 200 and "Se agregó su nota. El cliente no la ve." in html
    assert re.search(r'<li class="note" id="note-\d+">', html) and NOTE in html
    await visitor.post("/logout", {})
    await visitor.login(client["client_number"], stack.CLIENT_PASSWORD)
    status, html = await visitor.get(page)
    assert status == 200 and NOTE not in html and "Nota interna" not in html
    status, _ = await visitor.post(page + "/notes", {"note": "desde el cliente"})
    assert status == 403


async def test_assign_to_me_then_to_nobody_and_the_queue_filters(
    visitor: Visitor, desk: Desk
) -> None:
    client = await desk.new_client()
    mine = await desk.open(client)
    other = await desk.open(client, category_id=await desk.category("Otros"))
    await visitor.login(*stack.OPERATOR)
    page = f"/tickets/{mine['number']}"
    status, html = await visitor.get(page)
    assert ">Asignar a mí</button>" in html and has_label(html, "Asignar a")
    operator_id = re.search(r'name="operator_id" value="(\d+)">Asignar a mí', html).group(1)
    status, html = await visitor.post(page + "/assign", {"operator_id": operator_id})
    assert status == 200 and "Se guardó la asignación." in html
    assert "<dd>Oscar Operador</dd>" in html and ">Asignar a mí</button>" not in html

    queue = f"/tickets?status=waiting&client_number={client['client_number']}"
    _, html = await visitor.get(queue + "&assignee=me")
    assert has_label(html, "Asignación")
    numbers = [int(n) for n in re.findall(r'href="/tickets/(\d+)" title', html)]
    assert numbers == [mine["number"]]
    _, html = await visitor.get(queue + "&assignee=none")
    assert [int(n) for n in re.findall(r'href="/tickets/(\d+)" title', html)] == [other["number"]]
    assert "Espera" in html  # how long each has waited

    status, html = await visitor.post(page + "/assign", {"operator_id": ""})
    assert status == 200 and "<dd>Nadie</dd>" in html


async def test_an_answer_after_someone_elses_comes_back_with_the_text(
    visitor: Visitor, desk: Desk
) -> None:
    client = await desk.new_client()
    ticket = await desk.open(client)
    page = f"/tickets/{ticket['number']}"
    await visitor.login(*stack.OPERATOR)
    _, html = await visitor.get(page)
    seen = re.search(r'name="if_last_message_id" value="(\d+)"', html).group(1)
    # Meanwhile the client writes again.
    await desk.reply(ticket["number"], client["headers"], "Ahora tampoco entra.", expect=201)
    status, html = await visitor.post(
        page + "/reply", {"body": "Ya lo arreglamos.", "if_last_message_id": seen}
    )
    assert status == 409 and "Alguien escribió en este ticket" in html
    assert "Ahora tampoco entra." in html and ">Ya lo arreglamos.</textarea>" in html
    newest = re.search(r'name="if_last_message_id" value="(\d+)"', html).group(1)
    assert newest != seen
    status, html = await visitor.post(
        page + "/reply", {"body": "Ya lo arreglamos.", "if_last_message_id": newest}
    )
    assert status == 200 and "Ya lo arreglamos." in html


async def test_an_operators_close_is_confirmed_and_leaves_a_line(
    visitor: Visitor, desk: Desk
) -> None:
    client = await desk.new_client()
    ticket = await desk.open(client)
    page = f"/tickets/{ticket['number']}"
    await visitor.login(*stack.OPERATOR)
    status, html = await visitor.get(page + "/close")
    assert status == 200 and ">Sí, cerrar el ticket</button>" in html
    status, html = await visitor.post(page + "/close", {})
    assert status == 200 and "Cerrado por Oscar Operador" in html
    await visitor.post("/logout", {})
    await signed_in_client(visitor, desk)  # another client: the page is not theirs
    status, _ = await visitor.get(page + "/close")
    assert status == 403
