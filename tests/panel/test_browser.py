"""The guide's two procedures, walked in headless Chromium as a client, and an operator
answering from the queue; fields are found by their labels, as people using a screen reader do.
The pages on the way are photographed into docs/screenshots/."""

import re
from collections.abc import Awaitable, Callable

from playwright.async_api import Page, expect

from tests.panel.conftest import Stack, screenshot
from tests.support import stack
from tests.support.files import png
from tests.tickets.conftest import Desk

NewPage = Callable[..., Awaitable[Page]]


async def log_in(page: Page, panel: Stack, username: str, password: str) -> None:
    """Step 1 of both procedures: the Client Panel with the client number and password."""
    await page.goto(panel.url("/login"))
    await page.get_by_label("Número de cliente").fill(username)
    await page.get_by_label("Clave").fill(password)
    await page.get_by_role("button", name="Ingresar").click()
    await expect(page.get_by_role("navigation", name="Menú")).to_be_visible()


async def test_client_opens_a_ticket_as_the_guide_says(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client(services=("Hosting Linux Plus — example.com", "VPS Pro"))
    page = await new_page()
    await page.goto(panel_stack.url("/login"))
    await expect(page.get_by_role("link", name="¿Olvidó sus datos de acceso?")).to_be_visible()
    await screenshot(page, "login")
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)

    # 2. "Tickets" > "Abrir nuevo ticket" in the menu on the left.
    menu = page.get_by_role("navigation", name="Menú")
    await menu.get_by_role("link", name="Tickets").click()
    await menu.get_by_role("link", name="Abrir nuevo ticket").click()
    await expect(page).to_have_url(re.compile(r"/tickets/new$"))
    # 3. Servicio, Categoría (asunto), Consulta.
    await page.get_by_label("Servicio").select_option(label="Hosting Linux Plus — example.com")
    await page.get_by_label("Categoría (asunto)").select_option(label="Correo electrónico")
    query = "No puedo enviar correos desde info@example.com desde esta mañana."
    await page.get_by_label("Consulta").fill(query)
    await expect(page.get_by_text("Advertencia:")).to_be_visible()
    await screenshot(page, "new_ticket")
    # 4. "Enviar": the new ticket's page.
    await page.get_by_role("button", name="Enviar").click()
    await expect(page).to_have_url(re.compile(r"/tickets/\d+\?done=created$"))
    await expect(page.get_by_text(query)).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Correo electrónico")
    await expect(page.locator(".facts")).to_contain_text("Abierto")


async def test_client_replies_and_reopens_as_the_guide_says(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client()
    ticket = await desk.open(client, body="El sitio tarda en cargar.")
    await desk.reply(ticket["number"], desk.operator, "Revisamos el servidor: ¿sigue?", expect=201)
    page = await new_page()
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)

    # 2-4. "Tickets", find the ticket in the list, "Leer ticket" in the "Acciones" column.
    await page.get_by_role("navigation", name="Menú").get_by_role("link", name="Tickets").click()
    row = page.get_by_role("row").filter(has_text=f"#{ticket['number']}")
    await expect(row).to_contain_text("Esperando su respuesta")  # the client's side of "answered"
    await screenshot(page, "ticket_list")
    await row.get_by_role("link", name="Leer ticket").click()
    await expect(page).to_have_url(re.compile(rf"/tickets/{ticket['number']}$"))
    # 5. "Responder al ticket": the field and the button.
    await page.get_by_label("Responder al ticket").fill("Sí, sigue lento por las tardes.")
    await page.get_by_role("button", name="Responder al ticket").click()
    messages = page.locator(".conversation .message .body")
    await expect(messages).to_have_text(
        [
            "El sitio tarda en cargar.",
            "Revisamos el servidor: ¿sigue?",
            "Sí, sigue lento por las tardes.",
        ]
    )
    await expect(page.locator(".facts")).to_contain_text("Pendiente de soporte")
    await screenshot(page, "ticket")

    # An operator closes it; the client reopens it with "Agregar al ticket".
    operator = await new_page()
    await log_in(operator, panel_stack, *stack.OPERATOR)
    await operator.goto(panel_stack.url(f"/tickets/{ticket['number']}"))
    await operator.get_by_role("button", name="Cerrar ticket").click()
    await operator.get_by_role("button", name="Sí, cerrar el ticket").click()  # confirmed
    await expect(operator.locator(".facts")).to_contain_text("Cerrado")
    await expect(operator.locator(".closure")).to_contain_text("Cerrado por Oscar Operador")

    await page.reload()
    await expect(page.get_by_label("Responder al ticket")).to_have_count(0)
    await page.get_by_label("Agregar al ticket").fill("Volvió a pasar hoy.")
    await page.get_by_role("button", name="Reabrir ticket").click()
    await expect(page.locator(".facts")).to_contain_text("Abierto")
    await expect(messages.last).to_have_text("Volvió a pasar hoy.")


async def test_operator_answers_from_the_queue(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client(name="Marta Gómez")
    older = await desk.open(client, body="No funciona el correo.")
    await desk.open(
        client, body="Consulta sobre la factura.", category_id=await desk.category("Facturación")
    )
    page = await new_page()
    await log_in(page, panel_stack, *stack.OPERATOR)
    await expect(page.get_by_role("heading", name="Cola de tickets")).to_be_visible()
    await page.get_by_label("Número de cliente").fill(client["client_number"])
    await page.get_by_role("button", name="Filtrar").click()
    rows = page.locator("table.tickets tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text(f"#{older['number']}")  # the longest wait first
    await screenshot(page, "operator_queue")

    await rows.first.get_by_role("link", name="Leer ticket").click()
    await expect(page.get_by_role("complementary")).to_contain_text("Facturación")
    await page.get_by_label("Responder al ticket").fill("Ya está resuelto: pruebe de nuevo.")
    await page.get_by_role("button", name="Responder al ticket").click()
    await expect(page.locator(".facts")).to_contain_text("Respondido")
    await screenshot(page, "operator_ticket")
    _, body = await desk.get(older["number"], client["headers"])
    assert body["status"] == "answered"
    assert body["messages"][-1]["author"]["kind"] == "operator"


async def test_duplicate_warning_then_open_anyway(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client()
    first = await desk.open(client)
    page = await new_page()
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)
    await page.goto(panel_stack.url("/tickets/new"))
    await page.get_by_label("Categoría (asunto)").select_option(label="Correo electrónico")
    await page.get_by_label("Consulta").fill("Tampoco recibo correos.")
    await page.get_by_role("button", name="Enviar").click()
    alert = page.get_by_role("alert")
    await expect(
        alert.get_by_role("link", name=f"Ver el ticket #{first['number']}")
    ).to_be_visible()
    await expect(
        page.get_by_role("button", name=f"Agregar al ticket #{first['number']}")
    ).to_be_visible()
    await screenshot(page, "duplicate_warning")
    await page.get_by_role("button", name="Abrir de todos modos").click()
    await expect(page).to_have_url(re.compile(r"/tickets/\d+\?done=created$"))
    assert f"/tickets/{first['number']}?" not in page.url
    await expect(page.get_by_text("Tampoco recibo correos.")).to_be_visible()


async def test_the_text_edited_after_the_duplicate_warning_is_the_text_saved(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client()
    first = await desk.open(client)
    page = await new_page()
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)
    await page.goto(panel_stack.url("/tickets/new"))
    await page.get_by_label("Categoría (asunto)").select_option(label="Correo electrónico")
    await page.get_by_label("Consulta").fill("Primer borrador.")
    await page.get_by_role("button", name="Enviar").click()
    await expect(page.get_by_label("Consulta")).to_have_value("Primer borrador.")
    await page.get_by_label("Consulta").fill("Texto corregido tras el aviso.")
    await page.get_by_role("button", name=f"Agregar al ticket #{first['number']}").click()
    await expect(page).to_have_url(re.compile(rf"/tickets/{first['number']}\?done=replied$"))
    messages = page.locator(".conversation .message .body")
    await expect(messages.last).to_have_text("Texto corregido tras el aviso.")
    _, ticket = await desk.get(first["number"], client["headers"])
    assert "Primer borrador." not in [m["body"] for m in ticket["messages"]]


async def test_the_panel_fits_a_phone_and_speaks_english(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client()
    await desk.open(client)
    page = await new_page(width=390, height=844)
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("link", name="Open new ticket")).to_be_visible()
    await expect(page.get_by_role("link", name="Read ticket")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone
    await screenshot(page, "phone_ticket_list_en")


async def test_dates_follow_the_browsers_zone_and_drafts_survive_a_language_switch(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client()
    ticket = await desk.open(client)
    page = await new_page(zone="America/Argentina/Buenos_Aires")
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)
    await page.goto(panel_stack.url(f"/tickets/{ticket['number']}"))
    # The script told the panel the browser's zone once; times now say it.
    await expect(page.locator(".facts")).to_contain_text("hora de Buenos Aires")
    # A reply being typed survives switching the language.
    await page.get_by_label("Responder al ticket").fill("Texto a medio escribir")
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_label("Reply to ticket")).to_have_value("Texto a medio escribir")
    await expect(page.locator(".facts")).to_contain_text("Buenos Aires time")
    # Once sent, the draft is gone.
    await page.get_by_role("button", name="Reply to ticket").click()
    await expect(page.locator(".conversation .message .body").last).to_have_text(
        "Texto a medio escribir"
    )
    await expect(page.get_by_label("Reply to ticket")).to_have_value("")


async def test_telling_the_panel_the_zone_never_wipes_the_login_form(
    panel_stack: Stack, new_page: NewPage
) -> None:
    page = await new_page(zone="America/Argentina/Buenos_Aires")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    async with page.expect_response(lambda r: r.url.endswith("/time-zone")) as told:
        await page.goto(panel_stack.url("/login"))
        await page.get_by_label("Número de cliente").fill("100001")
    await told.value
    # The script's answer to the POST has run by the time this round trip is back.
    await page.evaluate("new Promise(resolve => setTimeout(resolve, 0))")
    await expect(page.get_by_label("Número de cliente")).to_have_value("100001")
    assert navigations == [panel_stack.url("/login")], navigations


async def test_client_opens_a_ticket_with_a_screenshot_attached(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client()
    page = await new_page()
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)
    await page.goto(panel_stack.url("/tickets/new"))
    await page.get_by_label("Categoría (asunto)").select_option(label="Correo electrónico")
    await page.get_by_label("Consulta").fill("Adjunto una captura del error al enviar.")
    await page.get_by_label("Adjuntar archivos").set_input_files(
        [{"name": "captura.png", "mimeType": "image/png", "buffer": png()}]
    )
    await page.get_by_role("button", name="Enviar").click()
    await expect(page).to_have_url(re.compile(r"/tickets/\d+\?done=created$"))
    files = page.get_by_role("list", name="Archivos adjuntos")
    link = files.get_by_role("link", name="captura.png")
    await expect(link).to_be_visible()
    async with page.expect_download() as download:
        await link.click()
    assert (await download.value).suggested_filename == "captura.png"
