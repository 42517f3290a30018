"""The client's profile (SPEC 9.4): language, "Cambiar email" and "Cambiar clave", through a plain
HTTP client against the real services."""

import uuid

from tests.panel.test_pages import has_label, signed_in_client
from tests.support import stack
from tests.support.events import EventTap
from tests.support.panel import Visitor
from tests.support.waiting import wait_for
from tests.tickets.conftest import Desk

NEW_PASSWORD = "a new sentence for the panel"


async def test_the_profile_has_the_specs_labels(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    status, html = await visitor.get("/profile")
    assert status == 200 and client["client_number"] in html
    assert has_label(html, "Nuevo email") and has_label(html, "Clave actual")
    assert ">Cambiar email</button>" in html and ">Cambiar clave</button>" in html
    assert '<a href="/profile" aria-current="page">Mi perfil</a>' in html


async def test_email_change_needs_the_current_password(
    visitor: Visitor, desk: Desk, event_tap: EventTap
) -> None:
    await signed_in_client(visitor, desk)
    new_email = f"{uuid.uuid4().hex[:10]}@example.com"
    status, html = await visitor.post(
        "/profile/email", {"new_email": new_email, "current_password": "not my password at all"}
    )
    assert status == 422 and "La clave actual no es correcta." in html
    assert f'value="{new_email}"' in html  # the address typed is kept
    status, html = await visitor.post(
        "/profile/email",
        {"new_email": "cliente@example.com", "current_password": stack.CLIENT_PASSWORD},
    )
    assert status == 422 and "Este ya es su email." in html
    status, html = await visitor.post(
        "/profile/email", {"new_email": new_email, "current_password": stack.CLIENT_PASSWORD}
    )
    assert status == 200 and "Enviamos un enlace de confirmación" in html
    await wait_for(
        lambda: [
            e
            for e in event_tap.bodies("auth.email_change.requested")
            if e["data"]["new_email"] == new_email
        ],
        timeout=20,
        message="the confirmation link sent to the new address",
    )


async def test_language_is_kept_on_the_account(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    status, html = await visitor.post("/profile/language", {"language": "en"})
    assert status == 200 and "Your language was saved." in html and "My profile" in html
    response = await desk.auth.get(f"/v1/clients/{client['client_number']}", headers=desk.admin)
    assert (await response.json())["language"] == "en"


async def test_password_change_ends_the_session(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    status, html = await visitor.post(
        "/profile/password",
        {
            "current_password": stack.CLIENT_PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_repeat": NEW_PASSWORD + " typo",
        },
    )
    assert status == 422 and "Las dos claves no coinciden." in html
    status, html = await visitor.post(
        "/profile/password",
        {
            "current_password": "not my password at all",
            "new_password": NEW_PASSWORD,
            "new_password_repeat": NEW_PASSWORD,
        },
    )
    assert status == 422 and "La clave actual no es correcta." in html
    status, html = await visitor.post(
        "/profile/password",
        {
            "current_password": stack.CLIENT_PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_repeat": NEW_PASSWORD,
        },
    )
    assert status == 200 and "Su clave fue cambiada. Ingrese con la nueva." in html
    response = await visitor.client.get("/tickets", allow_redirects=False)
    assert response.headers["Location"] == "/login"
    await visitor.login(client["client_number"], NEW_PASSWORD)
    status, html = await visitor.get("/tickets")
    assert status == 200 and client["client_number"] in html


async def test_an_operator_changes_only_the_password(visitor: Visitor, desk: Desk) -> None:
    await visitor.login(*stack.OPERATOR)
    status, html = await visitor.get("/profile")
    assert status == 200 and ">Cambiar clave</button>" in html
    assert "Cambiar email" not in html
    status, _ = await visitor.post(
        "/profile/email", {"new_email": "x@example.com", "current_password": stack.OPERATOR[1]}
    )
    assert status == 403
