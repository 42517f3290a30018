"""An auth service on a fresh database, and helpers to get tokens from it."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.auth.app import MIGRATIONS, create_app
from services.auth.settings import AuthSettings
from tests.support.infra import DatabaseFactory
from tests.support.sealing import PUBLIC_KEY

ADMIN_EMAIL = "admin@helpdesk.example"
ADMIN_PASSWORD = "a long admin passphrase for tests"
OPERATOR_EMAIL = "operator@helpdesk.example"
OPERATOR_PASSWORD = "an operator passphrase for tests"
CLIENT_PASSWORD = "the client passphrase for tests"


def auth_settings(database_url: str, amqp_url: str, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "amqp_url": amqp_url,
        # Cheap hashing keeps the suite fast; production uses the defaults of AuthSettings.
        "argon2_time_cost": 1,
        "argon2_memory_cost": 1024,
        "argon2_parallelism": 1,
        "outbox_poll_interval": 0.2,
        "amqp_reconnect_interval": 0.5,
        "sealing_public_key": PUBLIC_KEY,
    }
    values.update(overrides)
    return AuthSettings(**values)


@pytest.fixture
async def auth_db(databases: DatabaseFactory) -> str:
    return await databases.migrated("auth", MIGRATIONS)


@pytest.fixture
async def make_auth(
    auth_db: str, amqp_url: str
) -> AsyncIterator[Callable[..., Awaitable[TestClient]]]:
    """Start auth instances on the test's database (several, for multi-instance tests);
    `amqp_url=` among the overrides replaces the run's vhost URL."""
    clients: list[TestClient] = []

    async def make(**overrides: Any) -> TestClient:
        settings = auth_settings(auth_db, overrides.pop("amqp_url", amqp_url), **overrides)
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def auth(make_auth: Callable[..., Awaitable[TestClient]]) -> TestClient:
    return await make_auth()


class Api:
    """Small helpers over the auth test client; every call goes through real HTTP."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    async def token(self, username: str, password: str) -> dict[str, Any]:
        response = await self.http.post(
            "/v1/token", json={"username": username, "password": password}
        )
        assert response.status == 200, await response.text()
        return await response.json()

    async def bearer(self, username: str, password: str) -> dict[str, str]:
        pair = await self.token(username, password)
        return {"Authorization": f"Bearer {pair['access_token']}"}

    async def create_client(self, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {
            "name": "Juana Pérez",
            "email": "juana@example.com",
            "services": [{"name": "Hosting Linux Plus — example.com"}],
            "password": CLIENT_PASSWORD,
        } | fields
        response = await self.http.post("/v1/clients", json=body, headers=admin)
        assert response.status == 201, await response.text()
        return await response.json()


@pytest.fixture
async def api(auth: TestClient, auth_db: str) -> Api:
    """An auth with an admin (made by the create-operator command's code) and an operator."""
    from services.auth.accounts import create_operator_command
    from services.auth.api import DEPS
    from shared.resources import POOL

    app = auth.server.app
    await create_operator_command(
        app[POOL],
        app[DEPS],
        email=ADMIN_EMAIL,
        name="Ada Admin",
        role="admin",
        password=ADMIN_PASSWORD,
    )
    await create_operator_command(
        app[POOL],
        app[DEPS],
        email=OPERATOR_EMAIL,
        name="Oscar Operador",
        role="operator",
        password=OPERATOR_PASSWORD,
    )
    return Api(auth)


@pytest.fixture
async def admin(api: Api) -> dict[str, str]:
    return await api.bearer(ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
async def operator(api: Api) -> dict[str, str]:
    return await api.bearer(OPERATOR_EMAIL, OPERATOR_PASSWORD)


# --- helpers of the auth suite's own tests ------------------------------------------------------


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def assert_problem(response_status: int, body: dict[str, Any], status: int) -> None:
    """An RFC 9457 answer with the promised members."""
    assert response_status == status, body
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]


async def problem(response: Any, status: int) -> dict[str, Any]:
    """Read a problem+json answer, checking status, content type and members."""
    assert response.content_type == "application/problem+json", await response.text()
    body = await response.json(content_type=None)
    assert_problem(response.status, body, status)
    return body


@pytest.fixture
def pool(auth: TestClient) -> Any:
    """The auth app's own pool, to look at rows and move time in the database."""
    from shared.resources import POOL

    return auth.server.app[POOL]


@pytest.fixture
async def client(api: Api, admin: dict[str, str]) -> dict[str, Any]:
    """A client created by the admin, with CLIENT_PASSWORD."""
    return await api.create_client(admin)


@pytest.fixture
async def client_headers(api: Api, client: dict[str, Any]) -> dict[str, str]:
    return await api.bearer(client["client_number"], CLIENT_PASSWORD)
