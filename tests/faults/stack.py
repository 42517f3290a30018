"""The fault suite's running services (auth, tickets, the notifier) with the private PostgreSQL,
RabbitMQ and SMTP relay under them, and the accounts every scenario starts from."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.processes import Service
from tests.faults.private import PrivateRabbit
from tests.support.postgres import PrivatePostgres
from tests.support.smtp import SmtpSink
from tests.support.tickets_api import open_when_known

ADMIN = ("admin@faults.example", "the fault suite admin passphrase")
OPERATOR = ("olga@faults.example", "the fault suite operator passphrase")
CLIENT_PASSWORD = "the fault suite client passphrase"
CLIENTS = 3


@dataclass
class Client:
    number: str
    email: str
    service_id: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    pg: PrivatePostgres
    rabbit: PrivateRabbit
    relay: SmtpSink
    auth: Service
    tickets: Service
    notifier: Service
    notifier_database_url: str
    category_id: int = 0
    clients: list[Client] = field(default_factory=list)

    @property
    def services(self) -> list[Service]:
        return [self.auth, self.tickets, self.notifier]

    async def token(self, username: str, password: str) -> dict[str, str]:
        status, body = await self.auth.request(
            "POST", "/v1/token", json={"username": username, "password": password}
        )
        assert status == 200, body
        return {"Authorization": f"Bearer {body['access_token']}"}

    async def admin(self) -> dict[str, str]:
        return await self.token(*ADMIN)

    async def operator(self) -> dict[str, str]:
        return await self.token(*OPERATOR)

    async def refresh_tokens(self) -> None:
        for client in self.clients:
            client.headers = await self.token(client.number, CLIENT_PASSWORD)

    async def all_ready(self, timeout: float = 60) -> None:
        for service in self.services:
            await service.wait_ready(timeout)

    async def readiness(self) -> dict[str, int]:
        """Each service's /readyz status (503 only while its database is away)."""
        return {s.name: (await s.request("GET", "/readyz"))[0] for s in self.services}

    async def dead_letters(self) -> list[dict[str, Any]]:
        status, body = await self.notifier.request(
            "GET", "/v1/dead-letters", headers=await self.admin()
        )
        assert status == 200, body
        return body


async def populate(stack: Stack) -> None:
    """The operator and the clients, each known to tickets (a first ticket opened and closed)."""
    admin = await stack.admin()
    status, body = await stack.auth.request(
        "POST",
        "/v1/operators",
        headers=admin,
        json={"email": OPERATOR[0], "name": "Olga Operadora", "role": "operator",
              "password": OPERATOR[1]},
    )  # fmt: skip
    assert status == 201, body
    for i in range(1, CLIENTS + 1):
        status, body = await stack.auth.request(
            "POST",
            "/v1/clients",
            headers=admin,
            json={
                "name": f"Cliente {i}",
                "email": f"cliente{i}@faults.example",
                "password": CLIENT_PASSWORD,
                "services": [{"name": f"Hosting Linux Plus — c{i}.example"}],
            },
        )
        assert status == 201, body
        stack.clients.append(
            Client(body["client_number"], f"cliente{i}@faults.example", body["services"][0]["id"])
        )
    await stack.refresh_tokens()
    status, categories = await stack.tickets.request(
        "GET", "/v1/categories", headers=stack.clients[0].headers
    )
    assert status == 200, categories
    stack.category_id = categories[0]["id"]
    operator = await stack.operator()
    for client in stack.clients:
        first = {
            "service_id": client.service_id,
            "category_id": stack.category_id,
            "body": "Primer ticket de prueba.",
        }
        ticket = await open_when_known(
            stack.tickets, client.headers, first, timeout=30, message="tickets knows clients"
        )
        number = ticket["number"]
        status, body = await stack.tickets.request(
            "POST", f"/v1/tickets/{number}/close", headers=operator
        )
        assert status == 200, body


def log_dir(stack: Stack) -> Path:
    return stack.auth.log_path.parent
