"""Every page of the client's, the operator's and the admin's walk passes axe-core (WCAG 2.x A
and AA rules) in headless Chromium with no serious or critical violation, error states
included."""

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.panel.conftest import Stack
from tests.panel.test_browser import NewPage, log_in
from tests.support import stack
from tests.support.files import form, png
from tests.tickets.conftest import Desk

AXE = Axe()
SERIOUS = ("serious", "critical")


async def violations(page: Page) -> list[str]:
    """The serious and critical violations of the page as it is now, one line each."""
    results = await AXE.run(page)
    assert results.response["passes"], "axe checked nothing"
    return [
        f"{page.url}: {v['id']} ({v['impact']}): "
        + "; ".join(node["target"][0] for node in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


async def walk(page: Page, panel: Stack, paths: list[str]) -> list[str]:
    found: list[str] = []
    for path in paths:
        await page.goto(panel.url(path))
        found += await violations(page)
    return found


async def test_the_clients_pages_are_accessible(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client()
    _, image = await desk.call(
        "POST", "/v1/attachments", client["headers"], data=form(png(), "captura.png"), expect=201
    )
    ticket = await desk.open(
        client, body="Hay un enlace: https://example.com/estado", attachment_ids=[image["id"]]
    )
    await desk.reply(ticket["number"], desk.operator, "Respondido.", expect=201)
    page = await new_page()
    # The first Tab reaches the link that skips the top bar and the menu.
    await page.goto(panel_stack.url("/login"))
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Saltar al contenido")).to_be_focused()
    found = await walk(page, panel_stack, ["/login", "/password/recover"])
    found += await walk(page, panel_stack, ["/password/reset?token=x", "/email/confirm?token=x"])
    # A failed login: the error state.
    await page.goto(panel_stack.url("/login"))
    await page.get_by_role("button", name="Ingresar").click()
    found += await violations(page)
    await log_in(page, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)
    found += await walk(
        page,
        panel_stack,
        ["/tickets", "/tickets?status=closed", "/tickets/new", f"/tickets/{ticket['number']}"],
    )
    found += await walk(page, panel_stack, ["/profile"])
    # The new ticket form with its errors, and the duplicate warning.
    await page.goto(panel_stack.url("/tickets/new"))
    await page.get_by_role("button", name="Enviar").click()
    await expect(page.locator(".field-error").first).to_be_visible()
    # Focus moves to the summary of errors, whose links lead to the fields.
    await expect(page.locator(".error-summary")).to_be_focused()
    await page.locator(".error-summary").get_by_role("link").first.click()
    await expect(page.get_by_label("Categoría (asunto)")).to_be_focused()
    found += await violations(page)
    await page.get_by_label("Categoría (asunto)").select_option(label="Correo electrónico")
    await page.get_by_label("Consulta").fill("Otra vez.")
    await page.get_by_role("button", name="Enviar").click()
    await expect(page.get_by_role("button", name="Abrir de todos modos")).to_be_visible()
    found += await violations(page)
    # A reply with too many files: the error next to "Adjuntar archivos".
    await page.goto(panel_stack.url(f"/tickets/{ticket['number']}"))
    await page.get_by_label("Responder al ticket").fill("Seis capturas.")
    await page.get_by_label("Adjuntar archivos").set_input_files(
        [{"name": f"c{i}.png", "mimeType": "image/png", "buffer": png()} for i in range(6)]
    )
    await page.get_by_role("button", name="Responder al ticket").click()
    await expect(page.locator("#reply-files-error")).to_be_visible()
    found += await violations(page)
    # The phone's layout too.
    phone = await new_page(width=390, height=844)
    await log_in(phone, panel_stack, client["client_number"], stack.CLIENT_PASSWORD)
    found += await walk(phone, panel_stack, ["/tickets", f"/tickets/{ticket['number']}"])
    assert not found, "\n".join(found)


async def test_the_operators_and_admins_pages_are_accessible(
    panel_stack: Stack, desk: Desk, new_page: NewPage
) -> None:
    client = await desk.new_client()
    ticket = await desk.open(client)
    page = await new_page()
    await log_in(page, panel_stack, *stack.OPERATOR)
    found = await walk(
        page,
        panel_stack,
        [
            "/tickets",
            f"/tickets?client_number={client['client_number']}",
            f"/tickets/{ticket['number']}",
            "/profile",
        ],
    )
    admin = await new_page()
    await log_in(admin, panel_stack, *stack.ADMIN)
    found += await walk(
        admin,
        panel_stack,
        [
            "/admin/clients",
            "/admin/clients/new",
            f"/admin/clients/{client['client_number']}",
            "/admin/operators",
            "/admin/categories",
            "/admin/canned-replies",
            "/admin/dead-letters",
        ],
    )
    await admin.goto(panel_stack.url("/admin/clients/new"))
    await admin.get_by_role("button", name="Crear cliente").click()
    await expect(admin.locator(".field-error").first).to_be_visible()
    found += await violations(admin)
    assert not found, "\n".join(found)
