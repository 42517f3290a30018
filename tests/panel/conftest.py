"""auth, tickets and the panel running for real, once for the panel's tests; each test makes its
own clients, so tests never see each other's tickets (operators filter by client number)."""

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from deploy.rabbitmq import create_vhost, delete_vhost
from services.notifier.app import MIGRATIONS as NOTIFIER_MIGRATIONS
from services.notifier.app import create_app as create_notifier
from shared.resources import BROKER
from tests.notifier.conftest import notifier_settings
from tests.support import stack
from tests.support.events import EventTap
from tests.support.infra import AMQP_HOST, DatabaseFactory
from tests.support.panel import Visitor, start_panel
from tests.support.smtp import SmtpSink
from tests.tickets.conftest import Desk


@dataclass
class Stack:
    auth: TestClient
    tickets: TestClient
    notifier: TestClient
    panel: TestClient
    desk: Desk
    amqp_url: str
    smtp: SmtpSink

    def url(self, path: str = "/") -> str:
        return str(self.panel.make_url(path))


def base_url(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


@pytest.fixture(scope="session")
async def panel_stack(session_databases: DatabaseFactory, run_id: str) -> AsyncIterator[Stack]:
    """One stack for the panel's tests, on a vhost of its own: its tickets instance lives for
    the whole session and must not consume the events meant for other tests' instances."""
    vhost = f"panel-{run_id}"
    amqp_url = create_vhost(vhost, host=AMQP_HOST)
    auth = await stack.start_auth(session_databases, amqp_url)
    tickets_db = await stack.tickets_database(session_databases)
    tickets = await stack.start_tickets(tickets_db, amqp_url, base_url(auth))
    smtp = await SmtpSink().start()
    notifier_db = await session_databases.migrated("notifier", NOTIFIER_MIGRATIONS)
    notifier = await stack.start(
        create_notifier(
            notifier_settings(notifier_db, amqp_url, smtp.port, auth_url=base_url(auth))
        )
    )
    await notifier.server.app[BROKER].wait_ready(15)
    panel = await start_panel(
        session_databases, base_url(auth), base_url(tickets), notifier_url=base_url(notifier)
    )
    desk = Desk(auth, tickets)
    await desk.sign_in_staff()
    yield Stack(auth, tickets, notifier, panel, desk, amqp_url, smtp)
    await panel.close()
    await notifier.close()
    await smtp.stop()
    await tickets.close()
    await auth.close()
    delete_vhost(vhost)


@pytest.fixture
async def event_tap(panel_stack: Stack) -> AsyncIterator[EventTap]:
    """What the panel's stack publishes (on its own vhost)."""
    tap = await EventTap(panel_stack.amqp_url).start()
    yield tap
    await tap.close()


@pytest.fixture
async def desk(panel_stack: Stack) -> Desk:
    await panel_stack.desk.sign_in_staff()  # fresh tokens: a session outlives their 15 minutes
    return panel_stack.desk


@pytest.fixture
async def visitor(panel_stack: Stack) -> AsyncIterator[Visitor]:
    """A new visitor (own cookies) of the shared panel."""
    client = TestClient(panel_stack.panel.server, cookie_jar=CookieJar(unsafe=True))
    # The server is already started: only the client session is new.
    client._server = panel_stack.panel.server
    yield Visitor(client)
    await client.session.close()


# --- the browser: Debian's Chromium driven by Playwright (never `playwright install`) ---------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The README's pictures are re-made with `make screenshots` (UPDATE_SCREENSHOTS=1); an ordinary
# test run photographs into var/ so that it leaves the work tree clean.
_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = (
    _ROOT / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else _ROOT / "var" / "screenshots"
)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), (
        "Chromium is missing: `make test` installs it (apt-get install chromium)"
    )
    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    await browser.close()
    await playwright.stop()


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """Pages in their own browser contexts (own cookies): a client and an operator side by side."""
    contexts: list[BrowserContext] = []

    async def make(width: int = 1280, height: int = 800, zone: str = "Europe/Madrid") -> Page:
        # The panel's default zone: its script then has no zone to report (see test_browser).
        context = await browser.new_context(
            viewport={"width": width, "height": height}, locale="es-ES", timezone_id=zone
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


async def screenshot(page: Page, name: str) -> None:
    """A picture of the page (docs/screenshots/<name>.png with UPDATE_SCREENSHOTS=1)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
