"""The admin's pages (SPEC 9.4) through a plain HTTP client, against the real services: 404 for
everyone but an admin; clients and operators created, changed and disabled."""

import re
import uuid

import pytest

from tests.panel.test_pages import has_label, signed_in_client
from tests.support import stack
from tests.support.panel import Visitor
from tests.tickets.conftest import Desk

ADMIN_PAGES = ("/admin", "/admin/clients", "/admin/clients/new", "/admin/operators")


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
