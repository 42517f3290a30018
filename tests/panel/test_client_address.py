"""The panel passes the browser's address on to auth's login throttle (SPEC 9.1): with both
told that the proxy in front (here the test client, 127.0.0.1) is trusted, a stranger's
failures from one address do not lock the client out of the panel from another."""

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient

from tests.support import stack
from tests.support.panel import Visitor, start_panel

TRUSTED = {"trusted_proxies": "127.0.0.1/32"}


async def log_in(visitor: Visitor, username: str, password: str, address: str) -> int:
    await visitor.get("/login")
    status, _ = await visitor.post(
        "/login",
        {"username": username, "password": password},
        headers={"X-Forwarded-For": address},
        allow_redirects=False,
    )
    return status


async def test_failures_from_one_browser_address_do_not_lock_out_another(databases, amqp_url):
    auth = await stack.start_auth(databases, amqp_url, **TRUSTED)
    # tickets is not needed to sign in: the login answers with a redirect before any list.
    panel = await start_panel(databases, str(auth.make_url("")), "http://127.0.0.1:9", **TRUSTED)
    visitor = Visitor(TestClient(panel.server, cookie_jar=CookieJar(unsafe=True)))
    visitor.client._server = panel.server
    try:
        admin = await stack.bearer(auth, *stack.ADMIN)
        response = await auth.post(
            "/v1/clients",
            json={"name": "Rosa", "email": "rosa@example.com", "password": stack.CLIENT_PASSWORD},
            headers=admin,
        )
        number = (await response.json())["client_number"]
        for _ in range(10):
            assert await log_in(visitor, number, "a stranger's guess", "198.51.100.7") == 401
        assert await log_in(visitor, number, stack.CLIENT_PASSWORD, "198.51.100.7") == 429
        assert await log_in(visitor, number, stack.CLIENT_PASSWORD, "203.0.113.20") == 303
    finally:
        await visitor.client.session.close()
        await panel.close()
        await auth.close()
