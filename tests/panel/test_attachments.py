"""Files on the panel's forms (SPEC 9.4): "Adjuntar archivos" on the new-ticket, reply and
reopen forms, streamed to tickets; download links under each message; errors next to the field."""

import re
import uuid
from html import unescape
from urllib.parse import unquote

from services.tickets.api import POOL
from tests.panel.conftest import Stack
from tests.support import stack
from tests.support.files import pdf, png
from tests.support.panel import Visitor
from tests.tickets.conftest import Desk

MiB = 1024 * 1024
LINK = re.compile(r'<a href="(/tickets/\d+/attachments/[0-9a-f-]{36})" download>([^<]+)</a>')


def file_label(html: str) -> str:
    """The id of the file field labelled "Adjuntar archivos" (a real <label for>)."""
    match = re.search(r'<label for="([^"]+)">Adjuntar archivos</label>', html)
    assert match, "no file field"
    assert f'id="{match.group(1)}" name="attachments" type="file" multiple' in html
    return match.group(1)


def field_error(html: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]+)</p>', html)
    assert match, "no error next to the file field"
    return unescape(match.group(1))


async def signed_in_client(visitor: Visitor, desk: Desk) -> dict:
    client = await desk.new_client()
    await visitor.login(client["client_number"], stack.CLIENT_PASSWORD)
    return client


async def new_ticket_form(visitor: Visitor, desk: Desk, client: dict) -> dict[str, str]:
    status, html = await visitor.get("/tickets/new")
    assert status == 200 and 'enctype="multipart/form-data"' in html
    assert file_label(html) == "attachments"
    return {
        "service_id": str(client["services"][0]["id"]),
        "category_id": str(await desk.category()),
        "body": "Adjunto la captura del error.",
    }


async def links(visitor: Visitor, number: int) -> list[tuple[str, str]]:
    status, html = await visitor.get(f"/tickets/{number}")
    assert status == 200
    return LINK.findall(html)


async def attachment_rows(panel_stack: Stack) -> int:
    return await panel_stack.tickets.server.app[POOL].fetchval("SELECT count(*) FROM attachments")


async def test_a_ticket_opened_with_a_png_and_a_pdf_lists_both_for_download(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    client = await signed_in_client(visitor, desk)
    form = await new_ticket_form(visitor, desk, client)
    files = [("captura.png", png()), ("factura.pdf", pdf())]
    status, html = await visitor.post_files("/tickets/new", form, files)
    assert status == 200, html
    number = int(re.search(r"Ticket #(\d+)", html).group(1))
    found = LINK.findall(html)
    assert [name for _, name in found] == ["captura.png", "factura.pdf"]
    assert f"({len(png())} B)" in html

    response = await visitor.client.get(found[0][0])
    assert response.status == 200
    assert await response.read() == png()
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Length"] == str(len(png()))
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["Cache-Control"] == "private, no-store"
    response = await visitor.client.get(found[1][0])
    assert await response.read() == pdf()
    assert response.headers["Content-Type"] == "application/pdf"

    # Another client is told there is nothing there.
    await visitor.client.post("/logout", data={"csrf_token": visitor.csrf})
    await signed_in_client(visitor, desk)
    response = await visitor.client.get(found[0][0])
    assert response.status == 404 and "text/html" in response.headers["Content-Type"]
    assert "Content-Disposition" not in response.headers
    status, _ = await visitor.get(f"/tickets/{number}")
    assert status == 404


async def test_the_operator_downloads_the_clients_file(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    form = await new_ticket_form(visitor, desk, client)
    status, html = await visitor.post_files("/tickets/new", form, [("log.txt", b"error 42\n")])
    assert status == 200, html
    [(href, name)] = LINK.findall(html)
    assert name == "log.txt"
    await visitor.client.post("/logout", data={"csrf_token": visitor.csrf})
    await visitor.login(*stack.OPERATOR)
    response = await visitor.client.get(href)
    assert response.status == 200 and await response.read() == b"error 42\n"


async def test_reply_and_reopen_with_a_file(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    number = (await desk.open(client))["number"]
    status, html = await visitor.get(f"/tickets/{number}")
    assert file_label(html) == "reply-files"
    form = {"body": "Ahí va el registro."}
    status, html = await visitor.post_files(
        f"/tickets/{number}/reply", form, [("registro.pdf", pdf())]
    )
    assert status == 200, html
    assert [name for _, name in await links(visitor, number)] == ["registro.pdf"]

    await desk.close(number, desk.operator, expect=200)
    status, html = await visitor.get(f"/tickets/{number}")
    assert file_label(html) == "reopen-files"
    status, html = await visitor.post_files(
        f"/tickets/{number}/reopen", {"body": "Vuelve a fallar."}, [("otra.png", png())]
    )
    assert status == 200, html
    assert [name for _, name in await links(visitor, number)] == ["registro.pdf", "otra.png"]


async def test_an_empty_file_field_is_ignored(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    form = await new_ticket_form(visitor, desk, client)
    # What a browser sends for a file input left empty.
    status, html = await visitor.post_files("/tickets/new", form, [("", b"")])
    assert status == 200, html
    assert "Su ticket fue abierto" in html
    assert LINK.findall(html) == []


async def test_a_file_over_the_limit_comes_back_with_the_error_and_the_text(
    visitor: Visitor, desk: Desk
) -> None:
    client = await signed_in_client(visitor, desk)
    form = await new_ticket_form(visitor, desk, client)
    big = b"\xa5" * (11 * MiB)
    status, html = await visitor.post_files("/tickets/new", form, [("grande.bin", big)])
    assert status == 413
    assert field_error(html, file_label(html)) == "Cada archivo puede tener como máximo 10 MiB."
    assert "Adjunto la captura del error.</textarea>" in html
    _, page = await desk.list_page(client["headers"])
    assert page["items"] == []


async def test_more_than_five_files_come_back_with_the_error(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    number = (await desk.open(client))["number"]
    files = [(f"f{i}.png", png()) for i in range(6)]
    status, html = await visitor.post_files(
        f"/tickets/{number}/reply", {"body": "Seis archivos."}, files
    )
    assert status == 422
    error = field_error(html, "reply-files")
    assert error == "Se pueden adjuntar como máximo 5 archivos a la vez."
    assert "Seis archivos.</textarea>" in html
    _, ticket = await desk.get(number, client["headers"])
    assert len(ticket["messages"]) == 1


async def test_a_file_form_without_its_csrf_token_uploads_nothing(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    client = await signed_in_client(visitor, desk)
    number = (await desk.open(client))["number"]
    before = await attachment_rows(panel_stack)
    for token in (None, "forged-token"):
        data = {"csrf_token": token} if token else {}
        status, html = await visitor.post_files(
            f"/tickets/{number}/reply",
            data | {"body": "Sin token"},
            [("x.png", png())],
            csrf=False,
        )
        assert status == 403 and "Formulario caducado" in html
    # The right token, but not first: the form is refused before the file is read.
    status, _ = await visitor.post_files(
        f"/tickets/{number}/reply",
        {"body": "Token después", "csrf_token": visitor.csrf},
        [("x.png", png())],
        csrf=False,
    )
    assert status == 403
    assert await attachment_rows(panel_stack) == before
    _, ticket = await desk.get(number, client["headers"])
    assert len(ticket["messages"]) == 1


async def test_the_size_is_shown_in_the_readers_language() -> None:
    from services.panel.attachments import human_size

    assert human_size(1536 * 1024, "es") == "1,5 MiB"
    assert human_size(1536 * 1024, "en") == "1.5 MiB"
    assert human_size(10 * MiB, "es") == "10 MiB"
    assert human_size(2048, "en") == "2 KiB"
    assert human_size(12, "es") == "12 B"


async def test_a_name_tickets_refuses_comes_back_with_the_error(
    visitor: Visitor, desk: Desk
) -> None:
    client = await signed_in_client(visitor, desk)
    number = (await desk.open(client))["number"]
    status, html = await visitor.post_files(
        f"/tickets/{number}/reply", {"body": "Nombre largo."}, [("a" * 300 + ".png", png())]
    )
    assert status == 422
    assert field_error(html, "reply-files").startswith("El nombre de un archivo no es válido")
    assert "Nombre largo.</textarea>" in html


async def test_an_operator_answers_with_a_file(visitor: Visitor, desk: Desk) -> None:
    client = await desk.new_client()
    number = (await desk.open(client))["number"]
    await visitor.login(*stack.OPERATOR)
    status, html = await visitor.post_files(
        f"/tickets/{number}/reply", {"body": "Siga estos pasos."}, [("guia.pdf", pdf())]
    )
    assert status == 200, html
    assert [name for _, name in await links(visitor, number)] == ["guia.pdf"]
    _, ticket = await desk.get(number, client["headers"])
    assert [f["name"] for f in ticket["messages"][-1]["attachments"]] == ["guia.pdf"]


async def test_an_emailed_download_link_returns_to_the_file_after_login(
    visitor: Visitor, desk: Desk
) -> None:
    client = await signed_in_client(visitor, desk)
    form = await new_ticket_form(visitor, desk, client)
    _, html = await visitor.post_files("/tickets/new", form, [("captura.png", png())])
    [(href, _name)] = LINK.findall(html)
    await visitor.client.post("/logout", data={"csrf_token": visitor.csrf})
    response = await visitor.client.get(href, allow_redirects=False)
    assert response.status == 303
    assert unquote(response.headers["Location"]) == "/login?next=" + href


async def test_a_form_with_files_sent_twice_adds_its_message_once(
    visitor: Visitor, desk: Desk
) -> None:
    client = await signed_in_client(visitor, desk)
    number = (await desk.open(client))["number"]
    form = {"body": "Con captura.", "submission": uuid.uuid4().hex}
    status, _ = await visitor.post_files(f"/tickets/{number}/reply", form, [("c.png", png())])
    assert status == 200
    status, html = await visitor.post_files(f"/tickets/{number}/reply", form, [("c.png", png())])
    assert status == 409 and "Con captura.</textarea>" in html
    _, ticket = await desk.get(number, client["headers"])
    assert [len(m["attachments"]) for m in ticket["messages"]] == [0, 1]


async def test_a_text_longer_than_any_form_takes_comes_back_with_its_error(
    visitor: Visitor, desk: Desk
) -> None:
    client = await signed_in_client(visitor, desk)
    number = (await desk.open(client))["number"]
    pasted = "registro " * 15_000  # 135,000 characters: more than the panel keeps of a field
    status, html = await visitor.post_files(
        f"/tickets/{number}/reply", {"body": pasted}, [("log.txt", b"error 42\n")]
    )
    assert status == 422
    assert field_error(html, "reply-body") != ""
    assert pasted[:5000] in html  # what was pasted comes back to be cut
    _, ticket = await desk.get(number, client["headers"])
    assert len(ticket["messages"]) == 1
