"""Running auth and tickets in-process for tests of more than one service."""

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from services.auth.accounts import create_operator_command
from services.auth.api import DEPS
from services.auth.app import MIGRATIONS as AUTH_MIGRATIONS
from services.auth.app import create_app as create_auth_app
from services.auth.settings import AuthSettings
from services.tickets.app import MIGRATIONS as TICKETS_MIGRATIONS
from services.tickets.app import create_app as create_tickets_app
from services.tickets.settings import TicketsSettings
from shared.resources import POOL
from tests.support.infra import DatabaseFactory
from tests.support.sealing import PUBLIC_KEY

ADMIN = ("admin@helpdesk.example", "a long admin passphrase for tests")
OPERATOR = ("operator@helpdesk.example", "an operator passphrase for tests")
CLIENT_PASSWORD = "the client passphrase for tests"

# Cheap hashing and quick retries keep the suite fast; production uses the settings' defaults.
FAST = {"outbox_poll_interval": 0.2, "amqp_reconnect_interval": 0.5}
# The key the panel and tickets of the tests share (HELPDESK_PANEL_KEY).
PANEL_KEY = "panel-key-of-the-tests"
FAST_HASHING = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}


async def start(app: Any) -> TestClient:
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def start_auth(databases: DatabaseFactory, amqp_url: str, **overrides: Any) -> TestClient:
    """An auth on a fresh database, with an admin and an operator account."""
    settings = AuthSettings(
        database_url=await databases.migrated("auth", AUTH_MIGRATIONS),
        amqp_url=amqp_url,
        **(FAST | FAST_HASHING | {"sealing_public_key": PUBLIC_KEY} | overrides),
    )
    client = await start(create_auth_app(settings))
    app = client.server.app
    for (email, password), role, name in (
        (ADMIN, "admin", "Ada Admin"),
        (OPERATOR, "operator", "Oscar Operador"),
    ):
        await create_operator_command(
            app[POOL], app[DEPS], email=email, name=name, role=role, password=password
        )
    return client


async def start_tickets(
    database_url: str, amqp_url: str, auth_url: str, **overrides: Any
) -> TestClient:
    settings = TicketsSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        auth_url=auth_url,
        **(FAST | {"panel_key": PANEL_KEY} | overrides),
    )
    return await start(create_tickets_app(settings))


async def tickets_database(databases: DatabaseFactory) -> str:
    return await databases.migrated("tickets", TICKETS_MIGRATIONS)


async def bearer(auth: TestClient, username: str, password: str) -> dict[str, str]:
    response = await auth.post("/v1/token", json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['access_token']}"}
