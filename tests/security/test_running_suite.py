"""The security checks made on the whole suite as processes (tests/e2e's), all on one running
stack: starting its seven processes costs more than most checks, and each check reads the stack
or adds accounts of its own, so they run in the order of this file on the module's `suite`:

1. the authorization matrix, generated from each service's own `/openapi.json`;
2. the panel crawled as a stranger, a client, an operator and an admin;
3. the login throttle as a sprayer meets it;
4. the token scan, last: it restarts the notifiers and stops the SMTP sink.

(The inbound flood, a load test, is in tests/faults/test_inbound_flood.py: `make faults`.)"""

import json
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
import yarl

from deploy.processes import Service
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.security.browser import Browser, Crawl
from tests.security.scan import BARE_TOKEN, database_texts, link_token, queue_texts
from tests.security.support import OPERATOR_EMAIL, PASSWORD, Accounts, accounts
from tests.security.tokens import call, forged_tokens, operations
from tests.support.panel import TokenBox
from tests.support.waiting import wait_for

# It starts the services as processes: handed out first under xdist (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def known(suite: Suite) -> Accounts:
    """Made once: the operator's email can be registered only once on a stack."""
    return await accounts(suite)


# --- 1. Authorization: every route that needs a token is tried with none, with forged and stale
# tokens, and with a client's, an operator's and an admin's; each answer must be what the route's
# `x-roles` says.


async def test_every_route_answers_what_its_roles_say(suite: Suite, known: Accounts) -> None:
    tokens = known.tokens
    conn = await asyncpg.connect(suite.auth.env["AUTH_DATABASE_URL"])
    try:
        key = await conn.fetchrow(
            "SELECT private_pem, public_jwk FROM signing_keys WHERE retired_at IS NULL"
            " ORDER BY created_at DESC LIMIT 1"
        )
    finally:
        await conn.close()
    forged = forged_tokens(tokens["admin"], key["private_pem"], json.loads(key["public_jwk"]))

    wrong: list[str] = []
    checked: dict[str, int] = {}
    for service in (suite.auth, suite.tickets[0], suite.notifiers[0]):
        checked[service.name] = 0
        status, document = await service.request("GET", "/openapi.json")
        assert status == 200
        for method, path, op in operations(document):
            roles = op.get("x-roles")
            if roles is None:
                continue  # public (login, recovery, keys): nothing to authorize
            checked[service.name] += 1
            where = f"{service.name} {method} {path}"
            for name, token in {"no token": None, **forged}.items():
                status = await call(service, method, path, op, token)
                if status != 401:
                    wrong.append(f"{where} with {name}: {status}, not 401")
            for role, token in tokens.items():
                status = await call(service, method, path, op, token)
                if role in roles and status in (401, 403):
                    wrong.append(f"{where} as {role}: {status}, but the role is allowed")
                if role not in roles and status != 403:
                    wrong.append(f"{where} as {role}: {status}, not 403")
    assert all(checked.values()), f"protected routes found: {checked}; is x-roles published?"
    assert not wrong, "\n".join(wrong)


# --- 2. The panel: every page carries the security headers, every form is refused without its
# CSRF token (and changes nothing), and no `next=` value sends a visitor to another site.

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


async def test_panel_pages_headers_csrf_and_redirects(suite: Suite, known: Accounts) -> None:
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


# --- 3. The login throttle of SPEC 9.1: spellings of one username share a bucket; a stranger's
# address is stopped after 20 usernames while the account owner, from elsewhere, still logs in.
# (Recovery answers known and unknown emails in the same time: tests/auth/test_recovery_timing.py.)

WRONG = "not the password at all"


async def _login(auth: Service, username: Any, password: str, address: str) -> int:
    status, _ = await auth.request(
        "POST",
        "/v1/token",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},  # auth trusts the host's proxies, as make run does
    )
    return status


async def test_spellings_share_a_bucket_and_strangers_do_not_lock_owners_out(
    suite: Suite, known: Accounts
) -> None:
    auth, number = suite.auth, known.client_number
    spellings: list[Any] = [number, f" {number} ", f"00{number}", int(number)]
    for i in range(10):
        assert await _login(auth, spellings[i % 4], WRONG, "203.0.113.5") == 401
    assert await _login(auth, number, PASSWORD, "203.0.113.5") == 429
    assert await _login(auth, number, PASSWORD, "198.51.100.7") == 200

    emails = [OPERATOR_EMAIL.upper(), OPERATOR_EMAIL.title(), f"  {OPERATOR_EMAIL}"]
    for i in range(10):
        assert await _login(auth, emails[i % 3], WRONG, "203.0.113.6") == 401
    assert await _login(auth, OPERATOR_EMAIL, PASSWORD, "203.0.113.6") == 429

    # A sprayer: 20 usernames from one address, then nothing more from there.
    for i in range(20):
        assert await _login(auth, f"victim{i}@security.example", WRONG, "192.0.2.66") == 401
    assert await _login(auth, "another@security.example", WRONG, "192.0.2.66") == 429
    assert await _login(auth, number, PASSWORD, "192.0.2.66") == 429
    # The owners, from their own addresses, are not locked out by it.
    assert await _login(auth, number, PASSWORD, "198.51.100.8") == 200
    assert await _login(auth, OPERATOR_EMAIL, PASSWORD, "198.51.100.9") == 200


# --- 4. No usable one-time or refresh token rests anywhere but in the email and in the client's
# hands: after the welcome, email-change and recovery flows (one recovery email dead-lettered),
# every database of the suite, every message in its queues and every service's log is scanned for
# the tokens. Last: it restarts the notifiers with short retries and stops the SMTP sink.

EMAIL = "tomasa@security.example"
NEW_EMAIL = "tomasa.nueva@security.example"
TOMASA_PASSWORD = "tomasa's first passphrase"


async def _emails_to(
    suite: Suite, count: int, what: str, address: str = EMAIL
) -> list[EmailMessage]:
    return await wait_for(
        lambda: (found := suite.mailbox.to(address)) and len(found) >= count and found,
        timeout=30,
        interval=0.2,
        message=what,
    )


async def test_no_token_rests_in_plaintext(suite: Suite) -> None:
    auth = suite.auth
    # Recovery emails that cannot be sent are dead-lettered within a second.
    for notifier in suite.notifiers:
        await notifier.stop()
        notifier.env["NOTIFIER_RETRY_DELAYS"] = "[0.2, 0.2]"
        await notifier.start()
        await notifier.wait_ready()
    status, pair = await auth.request(
        "POST", "/v1/token", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    admin = {"Authorization": f"Bearer {pair['access_token']}"}
    status, client = await auth.request(
        "POST", "/v1/clients", headers=admin, json={"name": "Tomasa", "email": EMAIL}
    )
    assert status == 201, client
    number = client["client_number"]

    # The welcome link, used; a login by API and one by the panel.
    (welcome,) = await _emails_to(suite, 1, "the welcome email")
    welcome_token = link_token(welcome, "/password/reset")
    reset = {"token": welcome_token, "password": TOMASA_PASSWORD}
    status, _ = await auth.request("POST", "/v1/password-reset", json=reset)
    assert status == 204
    login = {"username": number, "password": TOMASA_PASSWORD}
    status, pair = await auth.request("POST", "/v1/token", json=login)
    assert status == 200
    browser = Browser(suite.panel.url)
    try:
        await browser.login(number, TOMASA_PASSWORD)
        cookie = browser.session.cookie_jar.filter_cookies(yarl.URL(suite.panel.url))
        box = TokenBox(cookie["helpdesk_session"].value.rpartition(".")[0])
    finally:
        await browser.close()
    conn = await asyncpg.connect(suite.panel.env["PANEL_DATABASE_URL"])
    try:
        sealed_refresh = await conn.fetchval(
            "SELECT refresh_token FROM sessions WHERE client_number = $1", number
        )
    finally:
        await conn.close()
    panel_refresh = box.open(sealed_refresh)
    assert panel_refresh

    # An email change: the link to the new address, used (it ends the API login).
    change = {"email": NEW_EMAIL, "current_password": TOMASA_PASSWORD}
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    status, _ = await auth.request("POST", "/v1/me/email", json=change, headers=me)
    assert status == 202
    confirmation = (await _emails_to(suite, 1, "the confirmation link", NEW_EMAIL))[-1]
    confirm_token = link_token(confirmation, "/email/confirm")
    status, _ = await auth.request("POST", "/v1/email-confirmation", json={"token": confirm_token})
    assert status == 204

    # A recovery link, delivered and left unused; then one the relay never takes.
    status, _ = await auth.request("POST", "/v1/password-recovery", json={"email": NEW_EMAIL})
    assert status == 202
    recovery = (await _emails_to(suite, 2, "the recovery email", NEW_EMAIL))[-1]
    recovery_token = link_token(recovery, "/password/reset")
    await suite.sink.stop()
    status, _ = await auth.request("POST", "/v1/password-recovery", json={"email": NEW_EMAIL})
    assert status == 202

    async def dead_lettered() -> bool:
        conn = await asyncpg.connect(suite.notifier_database_url)
        try:
            return await conn.fetchval("SELECT count(*) FROM dead_letters") > 0
        finally:
            await conn.close()

    await wait_for(dead_lettered, timeout=30, interval=0.2, message="a dead-lettered email")

    secrets = {
        "welcome token": welcome_token,
        "recovery token": recovery_token,
        "email confirmation token": confirm_token,
        "API refresh token": pair["refresh_token"],
        "panel refresh token": panel_refresh,
    }
    texts: list[str] = []
    for url in {
        auth.env["AUTH_DATABASE_URL"],
        suite.tickets[0].env["TICKETS_DATABASE_URL"],
        suite.notifier_database_url,
        suite.panel.env["PANEL_DATABASE_URL"],
    }:
        texts += await database_texts(url)
    texts += await queue_texts(auth.env["HELPDESK_AMQP_URL"])
    texts += [f"log {p.name}: {line}" for p in suite.programs for line in p.log().splitlines()]
    assert any("dead_letters" in t for t in texts), "the scan must see the dead letter"
    found = [
        f"{name} in {text[:200]}" for text in texts for name, s in secrets.items() if s in text
    ]
    found += [text[:300] for text in texts if BARE_TOKEN.search(text)]
    assert not found, "\n".join(found)
    # The dead letter keeps its token sealed (a replay can still send it).
    assert any("sealed1:" in t for t in texts if "dead_letters" in t)
