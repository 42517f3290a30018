"""Accounts of every role on a running suite (tests/e2e's), for the security tests."""

from dataclasses import dataclass

from deploy.processes import Service
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite
from tests.support.waiting import wait_for

PASSWORD = "a security suite passphrase"
OPERATOR_EMAIL = "olga@security.example"


@dataclass
class Accounts:
    tokens: dict[str, str]  # role -> access token
    client_number: str
    ticket_number: int


async def _token(auth: Service, username: str, password: str = PASSWORD) -> str:
    status, pair = await auth.request(
        "POST", "/v1/token", json={"username": username, "password": password}
    )
    assert status == 200, pair
    return pair["access_token"]


async def accounts(suite: Suite) -> Accounts:
    """An admin (the suite's), an operator and a client with a service and one ticket."""
    auth, tickets = suite.auth, suite.tickets[0]
    admin = await _token(auth, ADMIN_EMAIL, ADMIN_PASSWORD)
    as_admin = {"Authorization": f"Bearer {admin}"}
    operator = {"email": OPERATOR_EMAIL, "name": "Olga", "role": "operator", "password": PASSWORD}
    status, body = await auth.request("POST", "/v1/operators", json=operator, headers=as_admin)
    assert status == 201, body
    new_client = {
        "name": "Carla",
        "email": "carla@security.example",
        "password": PASSWORD,
        "services": [{"name": "Hosting — carla.example"}],
    }
    status, client = await auth.request("POST", "/v1/clients", json=new_client, headers=as_admin)
    assert status == 201, client
    as_client = {"Authorization": f"Bearer {await _token(auth, client['client_number'])}"}
    status, categories = await tickets.request("GET", "/v1/categories", headers=as_client)
    assert status == 200, categories
    ticket = {
        "service_id": client["services"][0]["id"],
        "category_id": categories[0]["id"],
        "body": "My site answers 500 since this morning.",
    }

    async def created() -> dict | None:
        # tickets learns the client's services from auth's event: wait for it.
        status, body = await tickets.request("POST", "/v1/tickets", json=ticket, headers=as_client)
        return body if status == 201 else None

    opened = await wait_for(created, timeout=20, interval=0.2, message="the client's ticket")
    return Accounts(
        tokens={
            "admin": admin,
            "operator": await _token(auth, OPERATOR_EMAIL),
            "client": as_client["Authorization"].removeprefix("Bearer "),
        },
        client_number=client["client_number"],
        ticket_number=opened["number"],
    )
