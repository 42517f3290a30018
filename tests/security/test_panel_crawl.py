"""The panel crawled as a stranger, a client and an operator: every page carries the security
headers, every form is refused without its CSRF token (and changes nothing), and no `next=`
value sends a visitor to another site."""

import re
from dataclasses import dataclass, field
from html import unescape

import aiohttp
import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.security.support import OPERATOR_EMAIL, PASSWORD, accounts

# Each starts the services as processes: handed out first under xdist (tests/conftest.py).
pytestmark = pytest.mark.slow

_LINK = re.compile(r'href="(/[^"]*)"')
_FORM = re.compile(r'<form[^>]*method="post"[^>]*action="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Pages a crawl must not follow: they end the session or are not HTML.
_SKIP = ("/static/", "/logout")
MAX_PAGES = 60
HOSTILE_NEXT = (
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    "https:evil.example",
    " //evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
)


@dataclass
class Crawl:
    pages: dict[str, int] = field(default_factory=dict)  # path -> status
    forms: set[str] = field(default_factory=set)
    missing_headers: list[str] = field(default_factory=list)


class Browser:
    """A visitor without JavaScript, with its own cookies."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str) -> tuple[aiohttp.ClientResponse, str]:
        async with self.session.get(self.base_url + path) as response:
            text = await response.text()
        if match := _CSRF.search(text):
            self.csrf = match.group(1)
        return response, text

    async def post(
        self, path: str, data: dict[str, str], *, follow: bool = True
    ) -> tuple[aiohttp.ClientResponse, str]:
        async with self.session.post(
            self.base_url + path, data=data, allow_redirects=follow
        ) as response:
            text = await response.text()
        if match := _CSRF.search(text):
            self.csrf = match.group(1)
        return response, text

    async def login(self, username: str, password: str) -> None:
        await self.get("/login")
        data = {"username": username, "password": password, "csrf_token": self.csrf}
        response, text = await self.post("/login", data)
        assert response.status == 200 and "/logout" in text, text[:500]

    async def crawl(self, start: list[str]) -> Crawl:
        crawl = Crawl()
        queue = list(start)
        while queue and len(crawl.pages) < MAX_PAGES:
            path = queue.pop(0)
            if path in crawl.pages:
                continue
            response, text = await self.get(path)
            crawl.pages[path] = response.status
            if not response.content_type.startswith("text/html"):
                continue
            headers = response.headers
            for name, wanted in (
                ("Content-Security-Policy", "default-src 'none'"),
                ("X-Content-Type-Options", "nosniff"),
                ("Cache-Control", "no-store"),
            ):
                if wanted not in headers.get(name, ""):
                    crawl.missing_headers.append(f"{path}: {name} is {headers.get(name)!r}")
            crawl.forms |= set(map(unescape, _FORM.findall(text)))
            for link in map(unescape, _LINK.findall(text)):
                link = link.split("#")[0]
                if link and not link.startswith(("//", *_SKIP)) and link not in crawl.pages:
                    queue.append(link)
        return crawl


async def _crawl_as(browser: Browser, start: list[str]) -> Crawl:
    crawl = await browser.crawl(start)
    assert not crawl.missing_headers, "\n".join(crawl.missing_headers)
    assert all(status < 500 for status in crawl.pages.values()), crawl.pages
    return crawl


async def _forms_need_csrf(browser: Browser, forms: set[str], signed_in: bool) -> None:
    for action in sorted(forms):
        response, _ = await browser.post(action, {"body": "forged", "language": "en"}, follow=False)
        assert response.status == 403, f"{action} without a CSRF token: {response.status}"
    if signed_in:
        # Nothing of it took: the visitor is still signed in (the forged logout did not count).
        response, text = await browser.get("/tickets")
        assert "/logout" in text


async def _no_open_redirect(browser: Browser) -> None:
    await browser.get("/login")
    for hostile in HOSTILE_NEXT:
        for action, field_name, value in (
            ("/language", "language", "en"),
            ("/time-zone", "time_zone", "UTC"),
        ):
            data = {field_name: value, "next": hostile, "csrf_token": browser.csrf}
            response, _ = await browser.post(action, data, follow=False)
            location = response.headers.get("Location", "/")
            assert location.startswith("/") and not location.startswith(("//", "/\\")), (
                f"{action} next={hostile!r} sends to {location!r}"
            )


async def test_panel_pages_headers_csrf_and_redirects(suite: Suite) -> None:
    known = await accounts(suite)
    ticket = f"/tickets/{known.ticket_number}"
    who = {
        "stranger": None,
        "client": (known.client_number, PASSWORD),
        "operator": (OPERATOR_EMAIL, PASSWORD),
        "admin": (ADMIN_EMAIL, ADMIN_PASSWORD),
    }
    for name, credentials in who.items():
        browser = Browser(suite.panel.url)
        try:
            if credentials is not None:
                await browser.login(*credentials)
            start = ["/", "/login", "/password/recover", "/tickets", "/tickets/new", ticket]
            crawl = await _crawl_as(browser, start)
            assert len(crawl.pages) >= 3, (name, crawl.pages)
            await _forms_need_csrf(browser, crawl.forms, signed_in=credentials is not None)
            await _no_open_redirect(browser)
        finally:
            await browser.close()
