"""No usable one-time or refresh token rests anywhere but in the email and in the client's hands:
after the welcome, email-change and recovery flows (one recovery email dead-lettered), every
database of the suite, every message in its queues and every service's log is scanned for the
tokens."""

import re
import subprocess

import aio_pika
import asyncpg
import pytest
import yarl

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.security.test_panel_crawl import Browser
from tests.support.panel import TokenBox
from tests.support.waiting import wait_for

# Each starts the services as processes: handed out first under xdist (tests/conftest.py).
pytestmark = pytest.mark.slow

EMAIL = "tomasa@security.example"
NEW_EMAIL = "tomasa.nueva@security.example"
PASSWORD = "tomasa's first passphrase"
# A token field holding anything but a sealed value (shared/sealing.py) or a hash.
_BARE_TOKEN = re.compile(r'"(reset_token|set_password_token|token)"\s*:\s*"(?!sealed1:)[^"]{16,}"')


def _link_token(message, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    match = re.search(re.escape(path) + r"\?token=([\w-]+)", text)
    assert match, text
    return match.group(1)


async def _emails_to(suite: Suite, count: int, what: str, address: str = EMAIL) -> list:
    return await wait_for(
        lambda: (found := suite.mailbox.to(address)) and len(found) >= count and found,
        timeout=30,
        interval=0.2,
        message=what,
    )


async def _database_texts(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name"
            " FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        texts = []
        for table in tables:
            for row in await conn.fetch(f"SELECT * FROM {table['name']}"):
                # bytea as the bytes it holds (a JSON body, say), not as hex.
                values = [
                    v.decode(errors="replace") if isinstance(v, bytes) else str(v)
                    for v in row.values()
                ]
                texts.append(f"{url.rsplit('/', 1)[1]} {table['name']}: {' | '.join(values)}")
        return texts
    finally:
        await conn.close()


async def _queue_texts(amqp_url: str) -> list[str]:
    """Every message waiting in the suite's vhost, read and given back (unacknowledged)."""
    vhost = amqp_url.rsplit("/", 1)[1]
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    texts = []
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in listed:
            queue = await channel.get_queue(name, ensure=False)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                texts.append(f"queue {name}: {message.body.decode(errors='replace')}")
        # Closing the channel gives every message back.
    return texts


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
    welcome_token = _link_token(welcome, "/password/reset")
    reset = {"token": welcome_token, "password": PASSWORD}
    status, _ = await auth.request("POST", "/v1/password-reset", json=reset)
    assert status == 204
    login = {"username": number, "password": PASSWORD}
    status, pair = await auth.request("POST", "/v1/token", json=login)
    assert status == 200
    browser = Browser(suite.panel.url)
    try:
        await browser.login(number, PASSWORD)
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
    change = {"email": NEW_EMAIL, "current_password": PASSWORD}
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    status, _ = await auth.request("POST", "/v1/me/email", json=change, headers=me)
    assert status == 202
    confirmation = (await _emails_to(suite, 1, "the confirmation link", NEW_EMAIL))[-1]
    confirm_token = _link_token(confirmation, "/email/confirm")
    status, _ = await auth.request("POST", "/v1/email-confirmation", json={"token": confirm_token})
    assert status == 204

    # A recovery link, delivered and left unused; then one the relay never takes.
    status, _ = await auth.request("POST", "/v1/password-recovery", json={"email": NEW_EMAIL})
    assert status == 202
    recovery = (await _emails_to(suite, 2, "the recovery email", NEW_EMAIL))[-1]
    recovery_token = _link_token(recovery, "/password/reset")
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
        texts += await _database_texts(url)
    texts += await _queue_texts(auth.env["HELPDESK_AMQP_URL"])
    texts += [f"log {p.name}: {line}" for p in suite.programs for line in p.log().splitlines()]
    assert any("dead_letters" in t for t in texts), "the scan must see the dead letter"
    found = [
        f"{name} in {text[:200]}" for text in texts for name, s in secrets.items() if s in text
    ]
    found += [text[:300] for text in texts if _BARE_TOKEN.search(text)]
    assert not found, "\n".join(found)
    # The dead letter keeps its token sealed (a replay can still send it).
    assert any("sealed1:" in t for t in texts if "dead_letters" in t)
