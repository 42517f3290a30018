"""The admin's pages (SPEC 9.4) through a plain HTTP client, against the real services: 404 for
everyone but an admin; clients and operators created, changed and disabled."""

import re
import uuid

import pytest

from tests.panel.conftest import Stack
from tests.panel.test_pages import has_label, signed_in_client
from tests.support import stack
from tests.support.panel import Visitor
from tests.support.waiting import wait_for
from tests.tickets.conftest import Desk

ADMIN_PAGES = (
    "/admin",
    "/admin/clients",
    "/admin/clients/new",
    "/admin/operators",
    "/admin/categories",
    "/admin/canned-replies",
    "/admin/dead-letters",
)


def unique_email() -> str:
    return f"{uuid.uuid4().hex[:10]}@example.com"


@pytest.mark.parametrize("who", ["anonymous", "client", "operator"])
async def test_admin_pages_are_404_for_everyone_else(
    visitor: Visitor, desk: Desk, who: str
) -> None:
    if who == "client":
        await signed_in_client(visitor, desk)
    elif who == "operator":
        await visitor.login(*stack.OPERATOR)
    for path in ADMIN_PAGES:
        status, html = await visitor.get(path)
        assert status == 404, (who, path)
        assert "Administración" not in html
    if who != "anonymous":
        status, _ = await visitor.post("/admin/operators", {"name": "X"})
        assert status == 404


async def test_an_admin_creates_a_client_with_services(visitor: Visitor, desk: Desk) -> None:
    await visitor.login(*stack.ADMIN)
    status, html = await visitor.get("/admin/clients")
    assert status == 200 and has_label(html, "Buscar")
    assert '<a class="button primary" href="/admin/clients/new">Nuevo cliente</a>' in html
    status, html = await visitor.get("/admin/clients/new")
    for label in ("Nombre", "Email", "Idioma", "Servicios"):
        assert has_label(html, label), label
    assert ">Crear cliente</button>" in html

    # A bad email is shown next to its field, with what was typed kept.
    form = {"name": "Lucía Fernández", "email": "not an email", "language": "es"}
    status, html = await visitor.post("/admin/clients/new", form | {"services": "VPS Pro"})
    assert status == 422 and "Escriba una dirección de email válida." in html
    assert 'value="Lucía Fernández"' in html and ">VPS Pro</textarea>" in html

    email = unique_email()
    status, html = await visitor.post(
        "/admin/clients/new",
        form | {"email": email, "services": "Hosting Linux Plus — lucia.example\n\n  VPS Pro  \n"},
    )
    assert status == 200 and "Se creó el cliente" in html
    number = re.search(r"Número de cliente (\d+)", html).group(1)
    assert "<li>Hosting Linux Plus — lucia.example</li>" in html and "<li>VPS Pro</li>" in html

    # Found by a part of the email; a service added; the email changed.
    status, html = await visitor.get(f"/admin/clients?q={email[:6]}")
    assert f'<a href="/admin/clients/{number}">{number}</a>' in html
    status, html = await visitor.post(f"/admin/clients/{number}/services", {"service": "Dominio"})
    assert status == 200 and "<li>Dominio</li>" in html
    new_email = unique_email()
    status, html = await visitor.post(
        f"/admin/clients/{number}", {"name": "Lucía F.", "email": new_email, "language": "en"}
    )
    assert status == 200 and "Se guardaron los cambios." in html
    response = await desk.auth.get(f"/v1/clients/{number}", headers=desk.admin)
    client = await response.json()
    assert client["email"] == new_email and client["language"] == "en"
    assert [s["name"] for s in client["services"]] == [
        "Hosting Linux Plus — lucia.example",
        "VPS Pro",
        "Dominio",
    ]


async def test_a_disabled_client_cannot_log_in(visitor: Visitor, desk: Desk) -> None:
    client = await desk.new_client()
    number = client["client_number"]
    await visitor.login(*stack.ADMIN)
    status, html = await visitor.get(f"/admin/clients/{number}")
    assert ">Deshabilitar</button>" in html and has_label(html, "Nuevo servicio")
    assert ">Agregar servicio</button>" in html
    status, html = await visitor.post(f"/admin/clients/{number}/enabled", {"disabled": "true"})
    assert status == 200 and ">Habilitar</button>" in html
    await visitor.post("/logout", {})
    await visitor.get("/login")
    status, html = await visitor.post(
        "/login", {"username": number, "password": stack.CLIENT_PASSWORD}
    )
    assert status == 401


async def test_an_admin_creates_and_disables_an_operator(visitor: Visitor, desk: Desk) -> None:
    await visitor.login(*stack.ADMIN)
    status, html = await visitor.get("/admin/operators")
    for label in ("Nombre", "Email", "Rol", "Clave"):
        assert has_label(html, label), label
    assert ">Crear operador</button>" in html
    email = unique_email()
    form = {"name": "Olga Operadora", "email": email, "role": "operator"}
    status, html = await visitor.post("/admin/operators", form | {"password": "short"})
    assert status == 422 and "La clave debe tener al menos 15 caracteres." in html
    password = "olga's operator passphrase"
    status, html = await visitor.post("/admin/operators", form | {"password": password})
    assert status == 200 and "Se creó el operador." in html and email in html
    status, html = await visitor.post("/admin/operators", form | {"password": password})
    assert status == 409 and "Ya existe un operador con este email." in html
    operator_id = re.search(
        rf'<tr id="operator-(\d+)">\s*<td[^>]*>Olga Operadora</td>\s*'
        rf"<td[^>]*>{re.escape(email)}",
        html,
    ).group(1)
    status, html = await visitor.post(f"/admin/operators/{operator_id}", {"role": "admin"})
    assert status == 200
    status, html = await visitor.post(f"/admin/operators/{operator_id}", {"disabled": "true"})
    assert status == 200
    response = await desk.auth.post("/v1/token", json={"username": email, "password": password})
    assert response.status == 401


async def test_an_admin_renames_and_disables_a_category(visitor: Visitor, desk: Desk) -> None:
    await visitor.login(*stack.ADMIN)
    name = f"Migraciones {uuid.uuid4().hex[:6]}"
    status, html = await visitor.post("/admin/categories", {"name": name})
    assert status == 200 and "Se creó la categoría." in html
    status, html = await visitor.post("/admin/categories", {"name": name.upper()})
    assert status == 409 and "Ya existe una categoría con este nombre." in html
    category_id = re.search(rf'id="category-name-(\d+)" name="name" value="{name}"', html).group(1)
    renamed = name.replace("Migraciones", "Mudanzas")
    status, html = await visitor.post(f"/admin/categories/{category_id}", {"name": renamed})
    assert status == 200 and f'value="{renamed}"' in html
    client = await desk.new_client()
    status, categories = await desk.call("GET", "/v1/categories", client["headers"])
    assert renamed in [c["name"] for c in categories]
    status, html = await visitor.post(f"/admin/categories/{category_id}", {"disabled": "true"})
    assert status == 200
    status, categories = await desk.call("GET", "/v1/categories", client["headers"])
    assert renamed not in [c["name"] for c in categories]  # no longer offered


async def test_canned_replies_are_kept_and_inserted_into_an_answer(
    visitor: Visitor, desk: Desk
) -> None:
    title = f"Reinicio {uuid.uuid4().hex[:6]}"
    text = "Reiniciamos el servicio: pruebe de nuevo y avísenos."
    await visitor.login(*stack.ADMIN)
    status, html = await visitor.post("/admin/canned-replies", {"title": title, "body": ""})
    assert status == 422 and 'value="' + title + '"' in html
    status, html = await visitor.post("/admin/canned-replies", {"title": title, "body": text})
    assert status == 200 and "Se creó la respuesta predefinida." in html
    reply_id = re.search(
        rf'id="canned-(\d+)" aria-labelledby="canned-title-\d+">\s*<h2[^>]*>{title}', html
    ).group(1)
    await visitor.post("/logout", {})

    client = await desk.new_client()
    ticket = await desk.open(client)
    await visitor.login(*stack.OPERATOR)
    status, html = await visitor.get(f"/tickets/{ticket['number']}")
    assert has_label(html, "Respuesta predefinida") and ">Insertar</button>" in html
    status, html = await visitor.post(
        f"/tickets/{ticket['number']}/insert", {"canned_id": reply_id, "body": "Hola Juana,"}
    )
    assert status == 200
    assert f">Hola Juana,\n\n{text}</textarea>" in html
    await visitor.post("/logout", {})

    await visitor.login(*stack.ADMIN)
    status, html = await visitor.post(f"/admin/canned-replies/{reply_id}/delete", {})
    assert status == 200 and "Se eliminó la respuesta predefinida." in html and title not in html


async def test_the_operator_sees_each_emails_delivery_and_an_admin_resends(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    address = unique_email()
    panel_stack.smtp.answer_for[address] = "550 5.1.1 No such user here"
    try:
        client = await desk.new_client(email=address)
        ticket = await desk.open(client)
        page = f"/tickets/{ticket['number']}"
        await visitor.login(*stack.ADMIN)

        async def dead() -> str | None:
            _, html = await visitor.get(page)
            return html if "Fallido" in html else None

        html = await wait_for(dead, timeout=30, message="the receipt refused for good")
        assert "Emails de este ticket" in html and "Acuse de recibo" in html
        assert "550 5.1.1 No such user here" in html and ">Reenviar</button>" in html
    finally:
        del panel_stack.smtp.answer_for[address]
    # The admin's list of dead letters has it too.
    _, letters = await visitor.get("/admin/dead-letters")
    assert "Mensajes fallidos" in letters and ">Reprocesar</button>" in letters
    resend = re.search(r'action="(/tickets/\d+/deliveries/[0-9a-f-]{36}/resend)"', html).group(1)
    status, html = await visitor.post(resend, {})
    assert status == 200 and "El email se envió de nuevo." in html

    async def sent() -> str | None:
        _, html = await visitor.get(page)
        return html if "Enviado" in html and "Fallido" not in html else None

    await wait_for(sent, timeout=30, message="the resent receipt delivered")
    assert any(address in r.rcpt_tos for r in panel_stack.smtp.received)
    # An operator sees the state but has no button to resend.
    await visitor.post("/logout", {})
    await visitor.login(*stack.OPERATOR)
    status, html = await visitor.get(page)
    assert "Enviado" in html and "Reenviar" not in html
