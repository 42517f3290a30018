"""The operator and admin console (SPEC 9.4) walked in headless Chromium against the real
services, every page checked with axe-core on the way and photographed (docs/screenshots/, with
`make screenshots`): an admin creates a client with two services and an operator; the client
sets a password from the welcome email and opens a ticket with a screenshot attached; the
operator assigns it to herself, adds a note, inserts a canned reply and answers; the client sees
the answer and the file but never the note; the operator sees the email delivered; the client
changes email through the profile and the emailed link; the admin disables the client, who can
no longer log in."""

import re
import uuid

from playwright.async_api import Page, expect

from tests.panel.conftest import Stack, screenshot
from tests.panel.test_accessibility import violations
from tests.panel.test_browser import NewPage, log_in
from tests.support import stack
from tests.support.files import png
from tests.support.waiting import wait_for

PASSWORD = "la clave de lucía en el panel"
OLGA_PASSWORD = "olga's operator passphrase"
NOTE = "Revisar también el DNS del dominio"
CANNED = "Reiniciamos el servicio de correo: pruebe de nuevo y avísenos si sigue igual."


def link_in(panel: Stack, address: str, path: str) -> str:
    """The panel link (`path?token=...`) of the newest email to `address`, on the test's panel."""
    for received in reversed(panel.smtp.received):
        if address in received.rcpt_tos:
            match = re.search(re.escape(path) + r"\?token=[\w-]+", received.text())
            if match:
                return panel.url(match.group(0))
    return ""


async def checked(page: Page, name: str, found: list[str]) -> None:
    """The page as it is now: photographed, and its axe violations collected. Once loaded: a
    screenshot taken while a form's answer is still loading fails ("Unable to capture")."""
    await page.wait_for_load_state()
    await screenshot(page, name)
    found += await violations(page)


async def test_the_console_from_the_admin_to_the_client(
    panel_stack: Stack, new_page: NewPage
) -> None:
    found: list[str] = []
    email = f"lucia.{uuid.uuid4().hex[:8]}@example.com"
    olga = f"olga.{uuid.uuid4().hex[:8]}@helpdesk.example"
    canned_title = f"Reinicio de correo {uuid.uuid4().hex[:4]}"

    # The admin creates a client with two services, an operator and a canned reply.
    admin = await new_page()
    await log_in(admin, panel_stack, *stack.ADMIN)
    menu = admin.get_by_role("navigation", name="Menú")
    await menu.get_by_role("link", name="Clientes").click()
    await admin.get_by_role("link", name="Nuevo cliente").click()
    await admin.get_by_label("Nombre").fill("Lucía Fernández")
    await admin.get_by_label("Email").fill(email)
    await admin.get_by_label("Servicios").fill("Hosting Linux Plus — lucia.example\nVPS Pro")
    await checked(admin, "admin_client_new", found)
    await admin.get_by_role("button", name="Crear cliente").click()
    await expect(admin.get_by_role("status")).to_contain_text("Se creó el cliente")
    await checked(admin, "admin_client", found)
    number = re.search(r"Número de cliente (\d+)", await admin.content()).group(1)
    await menu.get_by_role("link", name="Clientes").click()
    await admin.get_by_label("Buscar").fill(email)
    await admin.get_by_role("button", name="Buscar").click()
    await expect(admin.get_by_role("link", name=number)).to_be_visible()
    await checked(admin, "admin_clients", found)
    await menu.get_by_role("link", name="Operadores").click()
    await admin.get_by_label("Nombre", exact=True).fill("Olga Operadora")
    await admin.get_by_label("Email", exact=True).fill(olga)
    await admin.get_by_label("Rol", exact=True).select_option("operator")
    await admin.get_by_label("Clave", exact=True).fill(OLGA_PASSWORD)
    await admin.get_by_role("button", name="Crear operador").click()
    await expect(admin.get_by_role("status")).to_contain_text("Se creó el operador")
    await checked(admin, "admin_operators", found)
    await menu.get_by_role("link", name="Respuestas predefinidas").click()
    await admin.locator("#title-new").fill(canned_title)
    await admin.locator("#body-new").fill(CANNED)
    await admin.get_by_role("button", name="Crear respuesta predefinida").click()
    await expect(admin).to_have_url(re.compile(r"/admin/canned-replies\?done=created$"))
    await checked(admin, "admin_canned_replies", found)
    await menu.get_by_role("link", name="Categorías").click()
    await expect(admin).to_have_url(re.compile(r"/admin/categories$"))
    await checked(admin, "admin_categories", found)

    # The client chooses a password from the welcome email and opens a ticket with a file.
    welcome = await wait_for(
        lambda: link_in(panel_stack, email, "/password/reset"), timeout=30, message="welcome"
    )
    client = await new_page()
    await client.goto(welcome)
    await client.get_by_label("Nueva clave").fill(PASSWORD)
    await client.get_by_label("Repetir clave").fill(PASSWORD)
    await client.get_by_role("button", name="Guardar").click()
    await log_in(client, panel_stack, number, PASSWORD)
    await (
        client.get_by_role("navigation", name="Menú")
        .get_by_role("link", name="Abrir nuevo ticket")
        .click()
    )
    await client.get_by_label("Servicio").select_option(label="VPS Pro")
    await client.get_by_label("Categoría (asunto)").select_option(label="Correo electrónico")
    await client.get_by_label("Consulta").fill("No me llegan los correos desde ayer.")
    await client.get_by_label("Adjuntar archivos").set_input_files(
        {"name": "captura.png", "mimeType": "image/png", "buffer": png()}
    )
    await client.get_by_role("button", name="Enviar").click()
    await expect(client).to_have_url(re.compile(r"/tickets/\d+\?done=created$"))
    ticket_url = client.url.split("?")[0]
    await expect(client.get_by_role("link", name=re.compile("captura.png"))).to_be_visible()

    # Olga takes it, leaves a note, inserts the canned reply and answers.
    operator = await new_page()
    await log_in(operator, panel_stack, olga, OLGA_PASSWORD)
    await operator.get_by_label("Número de cliente").fill(number)
    await operator.get_by_role("button", name="Filtrar").click()
    await operator.get_by_role("link", name="Leer ticket").first.click()
    await operator.get_by_role("button", name="Asignar a mí").click()
    await expect(operator.locator(".facts")).to_contain_text("Olga Operadora")
    await operator.get_by_label("Nota interna").fill(NOTE)
    await operator.get_by_role("button", name="Agregar nota").click()
    await expect(operator.locator(".note")).to_contain_text(NOTE)
    await operator.get_by_label("Respuesta predefinida").select_option(label=canned_title)
    await operator.get_by_role("button", name="Insertar").click()
    await expect(operator.get_by_label("Responder al ticket")).to_have_value(CANNED)
    await operator.get_by_role("button", name="Responder al ticket").click()
    await expect(operator.locator(".facts")).to_contain_text("Respondido")

    async def delivered() -> bool:
        await operator.reload()
        return "Enviado" in await operator.locator("#deliveries").inner_text()

    await wait_for(delivered, timeout=30, message="the answer's email shown as sent")
    await checked(operator, "operator_console", found)
    await operator.goto(panel_stack.url("/tickets?assignee=me"))
    await checked(operator, "operator_queue_mine", found)

    # The client sees the answer and the file, never the note.
    await client.goto(ticket_url)
    await expect(client.locator(".conversation")).to_contain_text(CANNED)
    await expect(client.get_by_role("link", name=re.compile("captura.png"))).to_be_visible()
    assert NOTE not in await client.content()
    await checked(client, "client_ticket_answered", found)

    # The client changes email through the profile and the link sent to the new address.
    new_email = f"lucia.nueva.{uuid.uuid4().hex[:8]}@example.com"
    await (
        client.get_by_role("navigation", name="Menú").get_by_role("link", name="Mi perfil").click()
    )
    await client.get_by_label("Nuevo email").fill(new_email)
    await client.locator("#email-current-password").fill(PASSWORD)
    await client.get_by_role("button", name="Cambiar email").click()
    await expect(client.get_by_role("status")).to_contain_text("Enviamos un enlace")
    await checked(client, "client_profile", found)
    confirm = await wait_for(
        lambda: link_in(panel_stack, new_email, "/email/confirm"), timeout=30, message="link"
    )
    await client.goto(confirm)
    await client.get_by_role("button", name="Confirmar email").click()
    await expect(client.get_by_role("status")).to_contain_text("Su email fue cambiado")

    # The admin disables the client, who can no longer log in.
    await admin.goto(panel_stack.url(f"/admin/clients/{number}"))
    await expect(admin.get_by_label("Email", exact=True)).to_have_value(new_email)
    await admin.get_by_role("button", name="Deshabilitar").click()
    await expect(admin.get_by_role("button", name="Habilitar")).to_be_visible()
    again = await new_page()
    await again.goto(panel_stack.url("/login"))
    await again.get_by_label("Número de cliente").fill(number)
    await again.get_by_label("Clave").fill(PASSWORD)
    await again.get_by_role("button", name="Ingresar").click()
    await expect(again.get_by_role("alert")).to_contain_text("no son correctos")

    # The console on a phone.
    phone = await new_page(width=390, height=844)
    await log_in(phone, panel_stack, olga, OLGA_PASSWORD)
    await phone.goto(ticket_url)
    await checked(phone, "phone_operator_ticket", found)
    phone_admin = await new_page(width=390, height=844)
    await log_in(phone_admin, panel_stack, *stack.ADMIN)
    await phone_admin.goto(panel_stack.url("/admin/clients"))
    await checked(phone_admin, "phone_admin_clients", found)
    assert not found, "\n".join(found)


async def test_an_emails_link_opened_logged_out_returns_to_its_ticket(
    panel_stack: Stack, new_page: NewPage
) -> None:
    desk = panel_stack.desk
    client = await desk.new_client()
    ticket = await desk.open(client)
    page = await new_page()
    await page.goto(panel_stack.url(f"/tickets/{ticket['number']}"))  # the email's link
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("Número de cliente").fill(client["client_number"])
    await page.get_by_label("Clave").fill(stack.CLIENT_PASSWORD)
    await page.get_by_role("button", name="Ingresar").click()
    await expect(page).to_have_url(re.compile(rf"/tickets/{ticket['number']}$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{ticket['number']}")


async def test_a_client_marks_a_ticket_resolved_in_the_browser(
    panel_stack: Stack, new_page: NewPage
) -> None:
    desk = panel_stack.desk
    client = await desk.new_client()
    ticket = await desk.open(client)
    page = await new_page()
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)
    await page.goto(panel_stack.url(f"/tickets/{ticket['number']}"))
    await page.get_by_role("button", name="Marcar como resuelto").click()
    await expect(page.locator(".facts")).to_contain_text("Cerrado")
    await expect(page.locator(".closure")).to_contain_text("Marcado como resuelto por el cliente")
    await expect(page.get_by_role("button", name="Reabrir ticket")).to_be_visible()
