"""A visitor of the panel without JavaScript, and its crawl of the pages it can reach."""

import re
from dataclasses import dataclass, field
from html import unescape

import aiohttp

_LINK = re.compile(r'href="(/[^"]*)"')
_FORM = re.compile(r'<form[^>]*method="post"[^>]*action="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Pages a crawl must not follow: they end the session or are not HTML.
_SKIP = ("/static/", "/logout")
MAX_PAGES = 60


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
