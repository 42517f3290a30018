"""The panel's pages through a plain HTTP client (no JavaScript), against the real services."""

import asyncio
import re
import uuid
from html import unescape

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient

from services.panel.app import purge_sessions
from services.panel.sessions import COOKIE, TokenBox
from shared.resources import POOL
from tests.panel.conftest import Stack
from tests.support import stack
from tests.support.events import EventTap
from tests.support.panel import Visitor
from tests.support.sealing import opened
from tests.support.waiting import wait_for
from tests.tickets.conftest import Desk


def has_label(html: str, text: str) -> bool:
    """A <label for=id> with that text, and a control with that id."""
    match = re.search(r'<label for="([^"]+)">' + re.escape(text) + "</label>", html)
    return bool(match) and f'id="{match.group(1)}"' in html


async def signed_in_client(visitor: Visitor, desk: Desk) -> dict:
    client = await desk.new_client()
    await visitor.login(client["client_number"], stack.CLIENT_PASSWORD)
    return client


async def test_login_page_has_the_guides_labels(visitor: Visitor) -> None:
    status, html = await visitor.get("/login")
    assert status == 200
    assert has_label(html, "Número de cliente") and has_label(html, "Clave")
    assert ">Ingresar</button>" in html
    assert '<a href="/password/recover">¿Olvidó sus datos de acceso?</a>' in html
    assert '<html lang="es">' in html


async def test_a_phone_offers_digits_for_the_client_number_and_operators_their_email(
    visitor: Visitor,
) -> None:
    status, html = await visitor.get("/login")
    assert re.search(r'<input id="username"[^>]* inputmode="numeric"', html)
    assert 'href="/login?staff=1">Operadores: ingresen con su dirección de email.</a>' in html
    status, html = await visitor.get("/login?staff=1")
    assert has_label(html, "Email") and 'type="email"' in html and "inputmode" not in html
    status, html = await visitor.post(
        "/login?staff=1", {"username": stack.OPERATOR[0], "password": stack.OPERATOR[1]}
    )
    assert status == 200 and "Cola de tickets" in html


async def test_session_cookie_is_httponly_and_samesite_lax(panel_stack: Stack) -> None:
    response = await panel_stack.panel.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


async def test_tickets_page_without_session_goes_to_login(visitor: Visitor) -> None:
    response = await visitor.client.get("/tickets", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_login_with_wrong_password_says_so(visitor: Visitor, desk: Desk) -> None:
    client = await desk.new_client()
    await visitor.get("/login")
    status, html = await visitor.post(
        "/login", {"username": client["client_number"], "password": "not the password at all"}
    )
    assert status == 401
    assert "El número de cliente o la clave no son correctos." in html


async def test_login_without_csrf_token_is_refused(visitor: Visitor, desk: Desk) -> None:
    client = await desk.new_client()
    await visitor.get("/login")
    status, html = await visitor.post(
        "/login",
        {"username": client["client_number"], "password": stack.CLIENT_PASSWORD},
        csrf=False,
    )
    assert status == 403
    assert "Formulario caducado" in html and "código de seguridad" in html


async def test_reply_without_csrf_token_is_refused(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    ticket = await desk.open(client)
    number = ticket["number"]
    for token in (None, "forged-token"):
        data = {"body": "Sin token"} | ({"csrf_token": token} if token else {})
        response = await visitor.client.post(f"/tickets/{number}/reply", data=data)
        assert response.status == 403
        assert "text/html" in response.headers["Content-Type"]
    _, body = await desk.get(number, client["headers"])
    assert [m["body"] for m in body["messages"]] == ["No puedo enviar correos."]


async def test_script_in_a_message_is_shown_as_text(visitor: Visitor, desk: Desk) -> None:
    await signed_in_client(visitor, desk)
    await visitor.get("/tickets/new")
    status, html = await visitor.get("/tickets/new")
    service = re.search(r'<option value="(\d+)">Hosting Linux Plus', html).group(1)
    script = "<script>alert('xss')</script> & <b>bold</b>"
    status, html = await visitor.post(
        "/tickets/new", {"service_id": service, "category_id": "1", "body": script}
    )
    assert status == 200
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


async def test_client_cannot_open_another_clients_ticket(visitor: Visitor, desk: Desk) -> None:
    other = await desk.new_client(name="Otro Cliente")
    theirs = await desk.open(other, body="Privado")
    await signed_in_client(visitor, desk)
    status, html = await visitor.get(f"/tickets/{theirs['number']}")
    assert status == 404
    assert "Página no encontrada" in html and "Privado" not in html
    status, _ = await visitor.post(f"/tickets/{theirs['number']}/reply", {"body": "Hola"})
    assert status == 404
    status, html = await visitor.get("/tickets/99999999999999999999")
    assert status == 404 and "Página no encontrada" in html


async def test_unknown_page_is_an_html_404(visitor: Visitor) -> None:
    status, html = await visitor.get("/no/such/page")
    assert status == 404 and "Página no encontrada" in html


async def test_expired_session_leads_to_the_login_page(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    client = await signed_in_client(visitor, desk)
    pool = _panel_pool(panel_stack)
    expire = "UPDATE sessions SET expires_at = now() WHERE client_number = $1"
    await pool.execute(expire, client["client_number"])
    # A form of the ended session is not a CSRF failure: the visitor is sent to log in again.
    response = await visitor.client.post("/tickets/new", data={"csrf_token": visitor.csrf})
    assert response.url.path == "/login"
    assert "Su sesión ha caducado. Ingrese nuevamente." in await response.text()

    await visitor.login(client["client_number"], stack.CLIENT_PASSWORD)
    await pool.execute(expire, client["client_number"])
    response = await visitor.client.get("/tickets")
    assert response.url.path == "/login"
    assert "Su sesión ha caducado. Ingrese nuevamente." in await response.text()


def _panel_pool(panel_stack: Stack) -> asyncpg.Pool:
    return panel_stack.panel.server.app[POOL]


async def test_expired_sessions_are_purged_without_waiting_for_a_login(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    await signed_in_client(visitor, desk)
    pool = _panel_pool(panel_stack)
    expired = f"expired-{uuid.uuid4().hex}"  # a signed-in visitor's, gone idle
    await pool.execute(
        "INSERT INTO sessions (id, csrf_token, kind, expires_at)"
        " VALUES ($1, 'x', 'client', now() - interval '1 minute')",
        expired,
    )
    await purge_sessions(panel_stack.panel.server.app)  # the chore the panel runs every 10 min
    assert not await pool.fetchval("SELECT count(*) FROM sessions WHERE id = $1", expired)
    status, html = await visitor.get("/tickets")
    assert status == 200 and "/logout" in html  # a live session stays


async def test_anonymous_visitors_leave_no_rows(visitor: Visitor, panel_stack: Stack) -> None:
    pool = _panel_pool(panel_stack)
    before = await pool.fetchval("SELECT count(*) FROM sessions")
    for _ in range(5):
        visitor.client.session.cookie_jar.clear()  # a new stranger each time
        await visitor.get("/login")
        await visitor.post("/language", {"language": "en", "next": "/login"})
        await visitor.post("/login", {"username": "123456", "password": "wrong password"})
    assert await pool.fetchval("SELECT count(*) FROM sessions") == before


async def test_anonymous_language_and_csrf_live_in_the_cookie(visitor: Visitor) -> None:
    await visitor.get("/login")
    status, html = await visitor.post("/language", {"language": "en", "next": "/login"})
    assert status == 200 and "Client number" in html
    # The form's CSRF token still holds after the cookie was re-issued; a forged one does not.
    status, html = await visitor.post("/login", {"username": "1", "password": "x"})
    assert status != 403 and "Client number" in html
    visitor.csrf = "forged"
    status, _ = await visitor.post("/login", {"username": "1", "password": "x"})
    assert status == 403


async def _stored_tokens(visitor: Visitor, pool: asyncpg.Pool, client_number: str) -> dict:
    row = await pool.fetchrow(
        "SELECT access_token, refresh_token FROM sessions WHERE client_number = $1", client_number
    )
    box = visitor.token_box()
    return {"access_token": box.open(row[0]), "refresh_token": box.open(row[1]), "sealed": row}


async def test_stored_tokens_are_sealed_with_the_cookie(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    client = await signed_in_client(visitor, desk)
    pool = _panel_pool(panel_stack)
    tokens = await _stored_tokens(visitor, pool, client["client_number"])
    sealed = b"".join(tokens["sealed"])
    assert tokens["refresh_token"] and tokens["access_token"]
    assert tokens["refresh_token"].encode() not in sealed
    assert tokens["access_token"].encode() not in sealed
    # Without the cookie the rows open to nothing.
    assert TokenBox("someone else's cookie").open(tokens["sealed"]["refresh_token"]) is None


async def test_access_token_is_refreshed_transparently(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    client = await signed_in_client(visitor, desk)
    pool = _panel_pool(panel_stack)
    where = "WHERE client_number = $1"
    before = await _stored_tokens(visitor, pool, client["client_number"])
    # Shortly before expiry: refreshed before the call.
    await pool.execute(
        f"UPDATE sessions SET access_expires_at = now() {where}", client["client_number"]
    )
    status, html = await visitor.get("/tickets")
    assert status == 200 and "No hay tickets para mostrar." in html
    after = await _stored_tokens(visitor, pool, client["client_number"])
    assert after["refresh_token"] != before["refresh_token"]
    # A token auth no longer accepts: tickets answers 401, the panel refreshes and retries.
    await pool.execute(
        f"UPDATE sessions SET access_token = $2 {where}",
        client["client_number"],
        visitor.token_box().seal("garbage"),
    )
    status, html = await visitor.get("/tickets")
    assert status == 200 and "No hay tickets para mostrar." in html


async def test_revoked_login_leads_to_the_login_page(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    client = await signed_in_client(visitor, desk)
    pool = _panel_pool(panel_stack)
    refresh = (await _stored_tokens(visitor, pool, client["client_number"]))["refresh_token"]
    response = await panel_stack.auth.post("/v1/logout", json={"refresh_token": refresh})
    assert response.status == 204
    await pool.execute(
        "UPDATE sessions SET access_expires_at = now() WHERE client_number = $1",
        client["client_number"],
    )
    _status, html = await visitor.get("/tickets")
    assert "Su sesión ha caducado" in html


async def test_logout_revokes_the_refresh_token(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    client = await signed_in_client(visitor, desk)
    pool = _panel_pool(panel_stack)
    refresh = (await _stored_tokens(visitor, pool, client["client_number"]))["refresh_token"]
    status, html = await visitor.post("/logout", {})
    assert status == 200 and "Ha cerrado la sesión." in html
    response = await panel_stack.auth.post("/v1/token/refresh", json={"refresh_token": refresh})
    assert response.status == 401
    response = await visitor.client.get("/tickets", allow_redirects=False)
    assert response.headers["Location"] == "/login"


async def test_new_ticket_errors_are_shown_next_to_the_fields(visitor: Visitor, desk: Desk) -> None:
    await signed_in_client(visitor, desk)
    await visitor.get("/tickets/new")
    status, html = await visitor.post(
        "/tickets/new", {"service_id": "", "category_id": "abc", "body": "   "}
    )
    assert status == 422
    assert 'id="body" name="body" rows="10" maxlength="20000" required aria-invalid="true"' in html
    assert '<p class="field-error" id="body-error">Este campo es obligatorio.</p>' in html
    assert '<p class="field-error" id="category_id-error">Elija una opción de la lista.</p>' in html
    # A service that is not the client's: tickets refuses it, the form says so.
    status, html = await visitor.post(
        "/tickets/new", {"service_id": "987654", "category_id": "1", "body": "Hola"}
    )
    assert status == 422 and 'id="service_id-error"' in html


async def test_duplicate_ticket_names_the_open_one(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    first = await desk.open(client)
    form = {
        "service_id": str(client["services"][0]["id"]),
        "category_id": str(await desk.category()),
        "body": "Otra vez lo mismo",
    }
    await visitor.get("/tickets/new")
    status, html = await visitor.post("/tickets/new", form)
    assert status == 409
    assert f'<a href="/tickets/{first["number"]}">' in html
    assert f"Agregar al ticket #{first['number']}" in html
    assert ">Abrir de todos modos</button>" in html
    # Adding to it: the text goes to the open ticket.
    status, html = await visitor.post(f"/tickets/{first['number']}/reply", {"body": form["body"]})
    assert status == 200 and "Otra vez lo mismo" in html
    # Or opening one anyway.
    status, html = await visitor.post("/tickets/new", form | {"allow_duplicate": "true"})
    assert status == 200 and "Su ticket fue abierto." in html
    assert len(await desk.numbers(client["headers"])) == 2


async def test_replies_from_the_panel_carry_the_panel_channel(
    visitor: Visitor, desk: Desk, event_tap: EventTap
) -> None:
    client = await signed_in_client(visitor, desk)
    ticket = await desk.open(client)
    await visitor.get(f"/tickets/{ticket['number']}")
    status, html = await visitor.post(f"/tickets/{ticket['number']}/reply", {"body": "Gracias"})
    assert status == 200 and "Su respuesta fue agregada al ticket." in html

    def replied() -> list[dict]:
        events = event_tap.bodies("tickets.ticket.replied")
        return [e for e in events if e["data"]["number"] == ticket["number"]]

    mine = await wait_for(replied, timeout=20, message="the reply event")
    assert mine[0]["data"]["channel"] == "panel"


async def test_statuses_and_columns_in_words(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    ticket = await desk.open(client)
    await desk.reply(ticket["number"], desk.operator, "Respuesta", expect=201)
    status, html = await visitor.get("/tickets")
    assert status == 200
    for column in ("Número", "Asunto", "Estado", "Acciones"):
        assert f'<th scope="col">{column}</th>' in html
    assert '<th scope="col">Última actividad<span class="zone">hora de Madrid</span></th>' in html
    # The client reads whose turn it is; number and subject lead to the ticket.
    assert "Esperando su respuesta" in html and "Respondido" not in html
    n = ticket["number"]
    assert f'<a href="/tickets/{n}">#{n}</a>' in html
    assert f'<a href="/tickets/{n}">Correo electrónico</a>' in html
    assert f'href="/tickets/{n}" title="Leer ticket"' in html
    _status, html = await visitor.get("/tickets?status=closed")
    assert "No hay tickets para mostrar." in html
    assert '<a href="/tickets/new">Abrir nuevo ticket</a>' in html


async def test_an_emails_link_returns_to_its_ticket_after_login(
    visitor: Visitor, desk: Desk
) -> None:
    client = await desk.new_client()
    ticket = await desk.open(client)
    link = f"/tickets/{ticket['number']}"
    response = await visitor.client.get(link, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"/login?next={link}"
    _status, html = await visitor.get(response.headers["Location"])
    assert f'name="next" value="{link}"' in html
    response = await visitor.client.post(
        "/login",
        data={
            "username": client["client_number"],
            "password": stack.CLIENT_PASSWORD,
            "next": link,
            "csrf_token": visitor.csrf,
        },
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == link


async def test_login_never_sends_elsewhere(visitor: Visitor, desk: Desk) -> None:
    client = await desk.new_client()
    for elsewhere in ("//evil.example/x", "https://evil.example", "/\\evil.example", "x"):
        await visitor.get("/login")
        response = await visitor.client.post(
            "/login",
            data={
                "username": client["client_number"],
                "password": stack.CLIENT_PASSWORD,
                "next": elsewhere,
                "csrf_token": visitor.csrf,
            },
            allow_redirects=False,
        )
        assert response.headers["Location"] == "/tickets", elsewhere
        await visitor.post("/logout", {})


async def test_a_client_marks_a_ticket_resolved(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    ticket = await desk.open(client)
    status, html = await visitor.get(f"/tickets/{ticket['number']}")
    assert ">Marcar como resuelto</button>" in html and "Cerrar ticket" not in html
    status, html = await visitor.post(f"/tickets/{ticket['number']}/close", {})
    assert status == 200 and "El ticket está cerrado." in html
    assert ">Reabrir ticket</button>" in html


async def test_addresses_in_messages_are_links_that_pass_nothing_on(
    visitor: Visitor, desk: Desk
) -> None:
    client = await signed_in_client(visitor, desk)
    body = (
        "Vea https://example.com/a?x=1&y=<2>. Y javascript:alert(1), "
        "ftp://example.com/f y (http://example.org/b)."
    )
    ticket = await desk.open(client, body=body)
    _status, html = await visitor.get(f"/tickets/{ticket['number']}")
    assert (
        '<a href="https://example.com/a?x=1&amp;y=" rel="nofollow noopener noreferrer">'
        "https://example.com/a?x=1&amp;y=</a>&lt;2&gt;." in html
    )
    assert '<a href="http://example.org/b" rel="nofollow noopener noreferrer">' in html
    assert 'href="javascript' not in html and 'href="ftp' not in html


async def test_english_is_selectable(visitor: Visitor) -> None:
    await visitor.get("/login")
    status, html = await visitor.post("/language", {"language": "en", "next": "/login"})
    assert status == 200 and '<html lang="en">' in html
    assert has_label(html, "Client number") and has_label(html, "Password")
    assert ">Log in</button>" in html
    status, html = await visitor.post("/language", {"language": "es", "next": "//evil.example"})
    assert status == 200  # not sent elsewhere


async def test_password_recovery_gives_the_same_answer_for_any_email(
    visitor: Visitor, desk: Desk
) -> None:
    client = await desk.new_client()
    await visitor.get("/password/recover")
    answers = []
    for email in (client["email"], "nobody@example.com"):
        status, html = await visitor.post("/password/recover", {"email": email})
        assert status == 200
        answers.append(re.search(r'<p class="notice success".*?</p>', html, re.S).group(0))
    assert answers[0] == answers[1]
    status, html = await visitor.post("/password/recover", {"email": "not an email"})
    assert status == 422 and "Escriba una dirección de email válida." in html


async def test_password_reset_by_the_emailed_link(
    visitor: Visitor, desk: Desk, event_tap: EventTap
) -> None:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    response = await desk.auth.post(
        "/v1/clients",
        json={"name": "Rosa", "email": email, "services": [], "password": stack.CLIENT_PASSWORD},
        headers=desk.admin,
    )
    number = (await response.json())["client_number"]
    await visitor.get("/password/recover")
    await visitor.post("/password/recover", {"email": email})

    def emailed_token() -> str | None:
        events = event_tap.bodies("auth.password_recovery.requested")
        sealed = (e["data"]["reset_token"] for e in events if e["data"]["email"] == email)
        return next((opened(s) for s in sealed), None)

    token = await wait_for(emailed_token, timeout=20, message="the recovery event")

    status, html = await visitor.get(f"/password/reset?token={token}")
    assert has_label(html, "Nueva clave") and has_label(html, "Repetir clave")
    assert ">Guardar</button>" in html
    new = "a brand new passphrase of mine"
    cases = [
        ({"password": new, "password_repeat": new + "x"}, "Las dos claves no coinciden."),
        ({"password": "short", "password_repeat": "short"}, "al menos 15 caracteres"),
    ]
    for fields, message in cases:
        status, html = await visitor.post("/password/reset", {"token": token} | fields)
        assert status == 422 and message in html
    status, html = await visitor.post(
        "/password/reset", {"token": "bogus", "password": new, "password_repeat": new}
    )
    assert status == 400 and "Este enlace no es válido" in html
    status, html = await visitor.post(
        "/password/reset", {"token": token, "password": new, "password_repeat": new}
    )
    assert status == 200 and "Su nueva clave fue guardada." in html
    await visitor.login(number, new)


async def test_operator_queue_filters_and_closes(visitor: Visitor, desk: Desk) -> None:
    client = await desk.new_client(services=("Hosting Linux Plus", "VPS Pro"))
    first = await desk.open(client, body="Primero")
    second = await desk.open(client, body="Segundo", category_id=await desk.category("Otros"))
    await visitor.login(stack.OPERATOR[0], stack.OPERATOR[1])
    status, html = await visitor.get(f"/tickets?client_number={client['client_number']}")
    assert "Cola de tickets" in html
    numbers = [int(n) for n in re.findall(r'href="/tickets/(\d+)" title', html)]
    assert numbers == [first["number"], second["number"]]  # oldest waiting first
    status, html = await visitor.get(
        f"/tickets?status=waiting&client_number={client['client_number']}&q=Segundo"
    )
    assert [int(n) for n in re.findall(r'href="/tickets/(\d+)" title', html)] == [second["number"]]
    status, html = await visitor.get(f"/tickets/{first['number']}")
    assert "Otros tickets de este cliente" in html and f"#{second['number']}" in html
    assert ">Cerrar ticket</button>" in html
    status, html = await visitor.post(f"/tickets/{first['number']}/close", {})
    assert status == 200 and "El ticket está cerrado." in html
    assert unescape("Cerrado") in html


async def test_ticket_list_pages_with_next_cursor(visitor: Visitor, desk: Desk) -> None:
    client = await signed_in_client(visitor, desk)
    for i in range(21):
        await desk.open(client, body=f"Consulta {i}", allow_duplicate=True)
    status, html = await visitor.get("/tickets")
    assert status == 200 and len(re.findall(r'title="Leer ticket"', html)) == 20
    next_url = unescape(re.search(r'<a href="([^"]+)" rel="next">Página siguiente</a>', html)[1])
    status, html = await visitor.get(next_url)
    assert len(re.findall(r'title="Leer ticket"', html)) == 1
    assert 'rel="next"' not in html and "Primera página" in html


async def test_pages_forbid_scripts_and_framing(visitor: Visitor) -> None:
    response = await visitor.client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_concurrent_pages_refresh_the_token_once(
    visitor: Visitor, desk: Desk, panel_stack: Stack
) -> None:
    """Requests of one session racing past the token's expiry must not spend the refresh token
    twice: auth would take that for a theft and revoke the login."""
    client = await signed_in_client(visitor, desk)
    await _panel_pool(panel_stack).execute(
        "UPDATE sessions SET access_expires_at = now() WHERE client_number = $1",
        client["client_number"],
    )
    answers = await asyncio.gather(*(visitor.get("/tickets") for _ in range(6)))
    assert [status for status, _ in answers] == [200] * 6
    assert all("No hay tickets para mostrar." in html for _, html in answers)
    status, html = await visitor.get("/tickets")
    assert status == 200 and "Su sesión ha caducado" not in html


async def test_a_forged_non_ascii_cookie_or_token_is_refused_cleanly(
    panel_stack: Stack,
) -> None:
    # Raw headers: a cookie set by a sibling site could hold anything.
    headers = {"Cookie": "helpdesk_session=\u00e9.abc"}
    async with aiohttp.ClientSession() as http:
        async with http.get(panel_stack.url("/login"), headers=headers) as response:
            assert response.status == 200
            assert "Número de cliente" in await response.text()
        async with http.post(
            panel_stack.url("/login"), data={"csrf_token": "\u00e9", "username": "1"}
        ) as response:
            assert response.status == 403


async def test_dates_follow_the_time_zone_the_user_chooses(visitor: Visitor, desk: Desk) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    client = await signed_in_client(visitor, desk)
    ticket = await desk.open(client)
    created = datetime.fromisoformat(ticket["created_at"])
    status, html = await visitor.get(f"/tickets/{ticket['number']}")
    madrid = created.astimezone(ZoneInfo("Europe/Madrid")).strftime("%H:%M")
    assert f"{madrid}, hora de Madrid" in html  # times say their zone
    status, html = await visitor.get("/profile")
    assert has_label(html, "Zona horaria")
    status, html = await visitor.post(
        "/time-zone",
        {"time_zone": "America/Argentina/Buenos_Aires", "next": f"/tickets/{ticket['number']}"},
    )
    assert status == 200
    buenos_aires = created.astimezone(ZoneInfo("America/Argentina/Buenos_Aires")).strftime("%H:%M")
    assert f"{buenos_aires}, hora de Buenos Aires" in html and madrid not in html
    status, html = await visitor.get("/profile")
    assert '<option value="America/Argentina/Buenos_Aires" selected>' in html
    # Kept on the account: another device's login shows the same zone.
    other = Visitor(TestClient(visitor.client.server, cookie_jar=aiohttp.CookieJar(unsafe=True)))
    other.client._server = visitor.client.server
    try:
        await other.login(client["client_number"], stack.CLIENT_PASSWORD)
        _, html = await other.get(f"/tickets/{ticket['number']}")
        assert f"{buenos_aires}, hora de Buenos Aires" in html
    finally:
        await other.client.session.close()
    # A zone that does not exist is refused without changing anything.
    status, html = await visitor.post("/time-zone", {"time_zone": "Mars/Olympus", "next": "/"})
    assert status == 200
    status, html = await visitor.get(f"/tickets/{ticket['number']}")
    assert buenos_aires in html


async def test_email_change_is_confirmed_on_the_emailed_link(
    visitor: Visitor, desk: Desk, event_tap: EventTap
) -> None:
    client = await desk.new_client()
    number = client["client_number"]
    pair = await (
        await desk.auth.post(
            "/v1/token", json={"username": number, "password": stack.CLIENT_PASSWORD}
        )
    ).json()
    new_email = f"{uuid.uuid4().hex[:10]}@example.com"
    response = await desk.auth.post(
        "/v1/me/email",
        json={"email": new_email, "current_password": stack.CLIENT_PASSWORD},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert response.status == 202

    def emailed_token() -> str | None:
        events = event_tap.bodies("auth.email_change.requested")
        return next(
            (
                opened(e["data"]["confirm_token"])
                for e in events
                if e["data"]["new_email"] == new_email
            ),
            None,
        )

    token = await wait_for(emailed_token, timeout=20, message="the email-change event")
    # Opening the link changes nothing (mail scanners open links): it shows a form.
    status, html = await visitor.get(f"/email/confirm?token={token}")
    assert status == 200 and ">Confirmar email</button>" in html
    status, html = await visitor.post("/email/confirm", {"token": "bogus"})
    assert status == 400 and "Este enlace no es válido" in html
    status, html = await visitor.post("/email/confirm", {"token": token})
    assert status == 200 and "Su email fue cambiado." in html
    me = await desk.auth.get("/v1/clients/" + number, headers=desk.admin)
    assert (await me.json())["email"] == new_email
    # Used once only.
    status, html = await visitor.post("/email/confirm", {"token": token})
    assert status == 400
