"""When auth or tickets is away the panel answers a clear page quickly, never a 500 or a hang."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from deploy.processes import free_port
from services.panel.app import MIGRATIONS, create_app
from services.panel.settings import PanelSettings
from tests.panel.conftest import Stack, base_url
from tests.support import stack
from tests.support.infra import DatabaseFactory
from tests.support.panel import Visitor, start_panel
from tests.support.proxy import TcpProxy
from tests.support.waiting import wait_for
from tests.tickets.conftest import Desk


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and never answers (a service that hangs)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for writer in held:
        writer.close()
    server.close()


@pytest.fixture
async def half_file_server() -> AsyncIterator[str]:
    """Answers any request with the start of a 1 MiB file, then hangs up (tickets failing in
    the middle of a download)."""

    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 1048576\r\n\r\n" + b"x" * 65536
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(half, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def test_a_download_tickets_cuts_short_fails_and_the_panel_goes_on(
    databases: DatabaseFactory, panel_stack: Stack, desk: Desk, half_file_server: str
) -> None:
    panel = await start_panel(databases, base_url(panel_stack.auth), half_file_server)
    try:
        client = await desk.new_client()
        visitor = Visitor(panel)
        await visitor.get("/login")
        status, _ = await visitor.post(
            "/login",
            {"username": client["client_number"], "password": stack.CLIENT_PASSWORD},
            allow_redirects=False,
        )
        assert status == 303
        response = await panel.get(f"/tickets/1/attachments/{uuid.uuid4()}")
        assert response.status == 200
        # The panel's headers were sent before tickets failed: the body stops short of its
        # length, which a browser reports as a failed download.
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
        # And the panel answers the next visitor.
        async with aiohttp.ClientSession() as anyone, anyone.get(panel.make_url("/login")) as page:
            assert page.status == 200
    finally:
        await panel.close()


async def test_auth_down_gives_a_clear_503_page(databases: DatabaseFactory) -> None:
    panel = await start_panel(databases, closed_port_url(), closed_port_url())
    try:
        visitor = Visitor(panel)
        status, html = await visitor.get("/login")
        assert status == 200
        status, html = await visitor.post(
            "/login", {"username": "100001", "password": "whatever it is"}
        )
        assert status == 503
        assert "Servicio no disponible momentáneamente" in html
        assert "Traceback" not in html
    finally:
        await panel.close()


async def test_tickets_hanging_gives_a_503_page_in_time(
    databases: DatabaseFactory, panel_stack: Stack, desk: Desk, silent_server: str
) -> None:
    panel = await start_panel(
        databases, base_url(panel_stack.auth), silent_server, backend_timeout=1.0
    )
    try:
        client = await desk.new_client()
        visitor = Visitor(panel)

        async def logged_in() -> bool:
            # The short backend time limit applies to auth too: on a loaded machine a login
            # may take longer than it (answered 503), which is not what this test is about.
            await visitor.get("/login")
            status, _ = await visitor.post(
                "/login",
                {"username": client["client_number"], "password": stack.CLIENT_PASSWORD},
                allow_redirects=False,
            )
            return status == 303

        await wait_for(logged_in, timeout=30, interval=0.5, message="a login through the panel")
        started = time.monotonic()
        response = await panel.get("/tickets")
        html = await response.text()
        assert response.status == 503 and "Servicio no disponible" in html
        assert response.headers["Retry-After"]
        assert time.monotonic() - started < 3
    finally:
        await panel.close()


async def test_cookie_is_secure_when_the_public_url_is_https(
    databases: DatabaseFactory, panel_stack: Stack
) -> None:
    panel = await start_panel(
        databases,
        base_url(panel_stack.auth),
        base_url(panel_stack.tickets),
        public_url="https://helpdesk.example",
        cookie_secret="a configured secret for this test",
    )
    try:
        response = await panel.get("/login")
        cookie = response.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        await panel.close()


async def test_the_cookie_secret_is_generated_once_and_kept(
    databases: DatabaseFactory, panel_stack: Stack
) -> None:
    """Two panels on one database sign cookies alike: a session survives a restart or another
    instance."""
    dsn = await databases.migrated("panel", MIGRATIONS)
    urls = {"auth_url": base_url(panel_stack.auth), "tickets_url": base_url(panel_stack.tickets)}
    panels = []
    for _ in range(2):
        client = TestClient(
            TestServer(create_app(PanelSettings(database_url=dsn, **urls))),
            cookie_jar=CookieJar(unsafe=True),
        )
        await client.start_server()
        panels.append(client)
    try:
        first = await panels[0].get("/login")
        cookie = first.cookies["helpdesk_session"].value
        second = await panels[1].get("/login", cookies={"helpdesk_session": cookie})
        assert "Set-Cookie" not in second.headers  # the same session was found
    finally:
        for client in panels:
            await client.close()


@pytest.fixture
async def cut_off_auth(
    databases: DatabaseFactory, panel_stack: Stack
) -> AsyncIterator[tuple[TestClient, TcpProxy]]:
    """A panel reaching the shared stack's auth through a proxy the test can cut, and tickets
    directly."""
    auth = panel_stack.auth.make_url("/")
    to_auth = await TcpProxy(auth.host, auth.port).start()
    panel = await start_panel(
        databases, f"http://127.0.0.1:{to_auth.port}", base_url(panel_stack.tickets)
    )
    yield panel, to_auth
    await panel.close()
    await to_auth.close()


async def test_an_operator_reads_a_ticket_while_auth_cannot_list_operators(
    cut_off_auth: tuple[TestClient, TcpProxy], desk: Desk
) -> None:
    """Only the "Asignar a" list needs auth's operators: the page shows without it."""
    panel, to_auth = cut_off_auth
    ticket = await desk.open(await desk.new_client(), body="No me llega el correo.")
    visitor = Visitor(panel)
    await visitor.login(*stack.OPERATOR)
    to_auth.cut()
    status, html = await visitor.get(f"/tickets/{ticket['number']}")
    assert status == 200 and "No me llega el correo." in html
    assert "Asignar a mí" in html and 'id="assignee"' not in html


async def test_a_time_zone_chosen_while_auth_is_away_holds_for_the_session(
    cut_off_auth: tuple[TestClient, TcpProxy], desk: Desk
) -> None:
    panel, to_auth = cut_off_auth
    client = await desk.new_client()
    ticket = await desk.open(client)
    visitor = Visitor(panel)
    await visitor.login(client["client_number"], stack.CLIENT_PASSWORD)
    to_auth.cut()
    status, html = await visitor.post(
        "/time-zone",
        {"time_zone": "America/Argentina/Buenos_Aires", "next": f"/tickets/{ticket['number']}"},
    )
    assert status == 200 and "hora de Buenos Aires" in html
