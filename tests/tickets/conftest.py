"""auth and tickets running together, and a `Desk` helper to act as clients and operators."""

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestClient

from services.tickets.consumers import OPERATORS_QUEUE as OPERATOR_EVENTS
from services.tickets.consumers import QUEUE as CLIENT_EVENTS
from shared.broker import QueueSpec, declare_queue, declare_topology
from shared.resources import POOL
from tests.support import stack
from tests.support.infra import DatabaseFactory
from tests.support.waiting import wait_for


@pytest.fixture
async def auth(databases: DatabaseFactory, amqp_url: str) -> AsyncIterator[TestClient]:
    client = await stack.start_auth(databases, amqp_url)
    yield client
    await client.close()


@pytest.fixture
async def tickets_db(databases: DatabaseFactory) -> str:
    return await stack.tickets_database(databases)


@pytest.fixture
async def tickets(auth: TestClient, tickets_db: str, amqp_url: str) -> AsyncIterator[TestClient]:
    # The worker's vhost may hold the client events of earlier tests (auth's publish to the
    # queue once any tickets declared it): this test's instance would work through all of them
    # before its own clients reached the projection.
    await purge_queue(amqp_url, CLIENT_EVENTS, OPERATOR_EVENTS)
    client = await stack.start_tickets(tickets_db, amqp_url, str(auth.make_url("/")))
    yield client
    await client.close()


async def purge_queue(amqp_url: str, *specs: QueueSpec) -> None:
    """Each queue of `specs` declared and emptied, over one connection (every test's set-up)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await declare_topology(channel)
        for spec in specs:
            queue = await declare_queue(channel, spec)
            await queue.purge()


class Desk:
    """Acts through the real APIs: auth for accounts and tokens, tickets for the rest."""

    def __init__(self, auth: TestClient, tickets: TestClient) -> None:
        self.auth = auth
        self.tickets = tickets
        self.admin: dict[str, str] = {}
        self.operator: dict[str, str] = {}

    async def sign_in_staff(self) -> None:
        self.admin = await stack.bearer(self.auth, *stack.ADMIN)
        self.operator = await stack.bearer(self.auth, *stack.OPERATOR)

    async def new_client(
        self,
        name: str = "Juana Pérez",
        services: tuple[str, ...] = ("Hosting Linux Plus",),
        email: str = "cliente@example.com",
    ) -> dict[str, Any]:
        """A client created in auth, signed in, and known to tickets (projection caught up)."""
        body = {
            "name": name,
            "email": email,
            "services": [{"name": s} for s in services],
            "password": stack.CLIENT_PASSWORD,
        }
        response = await self.auth.post("/v1/clients", json=body, headers=self.admin)
        assert response.status == 201, await response.text()
        client = await response.json()
        client["headers"] = await stack.bearer(
            self.auth, client["client_number"], stack.CLIENT_PASSWORD
        )
        await self.wait_services(client)
        return client

    async def wait_services(self, client: dict[str, Any]) -> None:
        pool = self.tickets.server.app[POOL]
        wanted = {s["id"] for s in client["services"]}

        async def projected() -> bool:
            rows = await pool.fetch(
                "SELECT service_id FROM client_services WHERE client_number = $1",
                client["client_number"],
            )
            return {r["service_id"] for r in rows} == wanted

        await wait_for(projected, timeout=15, message="the services projection")

    async def new_operator(self, name: str, role: str = "operator") -> dict[str, Any]:
        """An operator created in auth by the admin, signed in, and known to tickets (from
        auth.operator.changed): {"id", "name", "headers", ...}."""
        email = f"{uuid.uuid4().hex[:12]}@helpdesk.example"
        body = {"email": email, "name": name, "role": role, "password": stack.CLIENT_PASSWORD}
        response = await self.auth.post("/v1/operators", json=body, headers=self.admin)
        assert response.status == 201, await response.text()
        operator = await response.json()
        operator["headers"] = await stack.bearer(self.auth, email, stack.CLIENT_PASSWORD)
        await self.wait_operator(operator["id"], name=name)
        return operator

    async def wait_operator(self, operator_id: int, **state: Any) -> None:
        """Until tickets' projection holds the operator with `state` (name, disabled...)."""
        pool = self.tickets.server.app[POOL]

        async def projected() -> bool:
            row = await pool.fetchrow("SELECT * FROM operators WHERE id = $1", operator_id)
            return row is not None and all(row[k] == v for k, v in state.items())

        await wait_for(projected, timeout=15, message=f"operator {operator_id} in tickets")

    async def staff_id(self, headers: dict[str, str]) -> int:
        """The operator id of a signed-in operator (their token's `sub`)."""
        payload = headers["Authorization"].split()[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["sub"].split(":")[1])

    async def category(self, name: str = "Correo electrónico") -> int:
        response = await self.tickets.get("/v1/categories", headers=self.operator)
        return next(c["id"] for c in await response.json() if c["name"] == name)

    async def open(
        self, client: dict[str, Any], body: str = "No puedo enviar correos.", **extra: Any
    ) -> dict[str, Any]:
        payload = {
            "service_id": client["services"][0]["id"],
            "category_id": await self.category(),
            "body": body,
        } | extra
        response = await self.tickets.post("/v1/tickets", json=payload, headers=client["headers"])
        assert response.status == 201, await response.text()
        return await response.json()

    async def call(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        expect: int | None = None,
        **kw: Any,
    ) -> tuple[int, Any]:
        """One request to tickets: (status, JSON body or None); `expect` asserts the status."""
        response = await self.tickets.request(method, path, headers=headers or {}, **kw)
        text = await response.text()
        if expect is not None:
            assert response.status == expect, f"{method} {path}: {response.status} {text}"
        if response.status >= 400:
            assert response.content_type == "application/problem+json", text
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return response.status, body

    async def create(self, client: dict[str, Any], **payload: Any) -> tuple[int, Any]:
        """POST /v1/tickets with the client's first service and the default category unless
        given; answers (status, body) without asserting."""
        payload = {
            "service_id": client["services"][0]["id"],
            "category_id": await self.category(),
            "body": "No puedo enviar correos.",
        } | payload
        return await self.call("POST", "/v1/tickets", client["headers"], json=payload)

    async def reply(
        self, number: int, who: dict[str, str], body: str = "Más detalles.", **kw: Any
    ) -> tuple[int, Any]:
        return await self.call(
            "POST", f"/v1/tickets/{number}/messages", who, json={"body": body}, **kw
        )

    async def reopen(
        self, number: int, who: dict[str, str], body: str = "Sigue sin funcionar.", **kw: Any
    ) -> tuple[int, Any]:
        return await self.call(
            "POST", f"/v1/tickets/{number}/reopen", who, json={"body": body}, **kw
        )

    async def close(self, number: int, who: dict[str, str], **kw: Any) -> tuple[int, Any]:
        return await self.call("POST", f"/v1/tickets/{number}/close", who, **kw)

    async def get(self, number: int, who: dict[str, str], **kw: Any) -> tuple[int, Any]:
        return await self.call("GET", f"/v1/tickets/{number}", who, **kw)

    async def list_page(self, who: dict[str, str], **params: Any) -> tuple[int, Any]:
        return await self.call("GET", "/v1/tickets", who, params=params)

    async def numbers(self, who: dict[str, str], **params: Any) -> list[int]:
        """The numbers of one page of GET /v1/tickets (asserting 200)."""
        status, body = await self.list_page(who, **params)
        assert status == 200, body
        return [t["number"] for t in body["items"]]

    async def all_numbers(self, who: dict[str, str], **params: Any) -> list[int]:
        """Every page of GET /v1/tickets, following next_cursor."""
        out: list[int] = []
        cursor = None
        while True:
            page = params | ({"cursor": cursor} if cursor else {})
            status, body = await self.list_page(who, **page)
            assert status == 200, body
            out += [t["number"] for t in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return out


@pytest.fixture
async def desk(auth: TestClient, tickets: TestClient) -> Desk:
    desk = Desk(auth, tickets)
    await desk.sign_in_staff()
    return desk
