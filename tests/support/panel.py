"""The panel running in-process against real auth and tickets, and a form-posting visitor."""

import re
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from services.panel.app import MIGRATIONS, create_app
from services.panel.sessions import COOKIE, TokenBox
from services.panel.settings import PanelSettings
from tests.support.infra import DatabaseFactory
from tests.support.stack import PANEL_KEY

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def start_panel(
    databases: DatabaseFactory, auth_url: str, tickets_url: str, **overrides: Any
) -> TestClient:
    settings = PanelSettings(
        database_url=await databases.migrated("panel", MIGRATIONS),
        auth_url=auth_url,
        tickets_url=tickets_url,
        **({"backend_timeout": 3.0, "panel_key": PANEL_KEY} | overrides),
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    return client


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


class Visitor:
    """A browser without JavaScript: GETs pages and posts their forms with the CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, path: str, **kw: Any) -> tuple[int, str]:
        response = await self.client.get(path, **kw)
        text = await response.text()
        if "csrf_token" in text:
            self.csrf = csrf_of(text)
        return response.status, text

    async def post(
        self, path: str, data: dict[str, str], *, csrf: bool = True, **kw: Any
    ) -> tuple[int, str]:
        if csrf and not self.csrf:
            await self.get("/login")
        form = data | ({"csrf_token": self.csrf} if csrf else {})
        response = await self.client.post(path, data=form, **kw)
        text = await response.text()
        if "csrf_token" in text:
            self.csrf = csrf_of(text)
        return response.status, text

    async def post_files(
        self,
        path: str,
        data: dict[str, str],
        files: Sequence[tuple[str, bytes | aiohttp.payload.Payload]],
        *,
        csrf: bool = True,
        field: str = "attachments",
    ) -> tuple[int, str]:
        """The form sent as a browser sends one with `enctype="multipart/form-data"`: the CSRF
        token first, then the fields, then each (name, bytes) in the file field."""
        if csrf and not self.csrf:
            await self.get("/login")
        form = aiohttp.FormData(quote_fields=False)
        for name, value in (({"csrf_token": self.csrf} if csrf else {}) | data).items():
            form.add_field(name, value)
        for filename, content in files:
            form.add_field(
                field, content, filename=filename, content_type="application/octet-stream"
            )
        response = await self.client.post(path, data=form)
        text = await response.text()
        if "csrf_token" in text:
            self.csrf = csrf_of(text)
        return response.status, text

    async def login(self, username: str, password: str) -> None:
        await self.get("/login")
        status, text = await self.post("/login", {"username": username, "password": password})
        assert status == 200 and "/logout" in text, text

    def cookie_token(self) -> str:
        """The random token of the visitor's session cookie (without its signature)."""
        cookie = self.client.session.cookie_jar.filter_cookies(self.client.make_url("/"))
        return cookie[COOKIE].value.rpartition(".")[0]

    def token_box(self) -> TokenBox:
        """What seals this visitor's stored tokens: only someone holding its cookie has it."""
        return TokenBox(self.cookie_token())
