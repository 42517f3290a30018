"""Roles: a client never acts as staff, an operator never as admin, a forged role is refused."""

import base64
import json

import jwt

from services.auth.api import DEPS
from tests.auth.conftest import problem

NEW_CLIENT = {"name": "Mallory", "email": "mallory@example.com"}
NEW_OPERATOR = {
    "email": "mallory@helpdesk.example",
    "name": "Mallory",
    "role": "admin",
    "password": "mallory wants to be an admin",
}


def staff_requests(number: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("POST", "/v1/clients", NEW_CLIENT),
        ("GET", f"/v1/clients/{number}", None),
        ("GET", "/v1/clients/999999", None),
        ("POST", f"/v1/clients/{number}/services", {"name": "Free VPS"}),
        ("POST", "/v1/operators", NEW_OPERATOR),
    ]


async def test_client_can_never_act_as_operator_or_admin(api, client, client_headers, pool):
    for method, path, body in staff_requests(client["client_number"]):
        response = await api.http.request(method, path, json=body, headers=client_headers)
        await problem(response, 403)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM clients") == 1
        assert await conn.fetchval("SELECT count(*) FROM client_services") == 1
        assert await conn.fetchval("SELECT count(*) FROM operators") == 2


async def test_operator_gets_403_on_admin_routes(api, client, operator, pool):
    number = client["client_number"]
    for method, path, body in (
        ("POST", "/v1/clients", NEW_CLIENT),
        ("POST", f"/v1/clients/{number}/services", {"name": "Free VPS"}),
        ("POST", "/v1/operators", NEW_OPERATOR),
    ):
        response = await api.http.request(method, path, json=body, headers=operator)
        await problem(response, 403)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM clients") == 1
        assert await conn.fetchval("SELECT count(*) FROM operators") == 2
    # ...but may read a client.
    assert (await api.http.get(f"/v1/clients/{number}", headers=operator)).status == 200


async def test_staff_routes_without_a_token_are_401(api, client):
    for method, path, body in staff_requests(client["client_number"]):
        response = await api.http.request(method, path, json=body)
        await problem(response, 401)
        assert "WWW-Authenticate" in response.headers


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_client_token_with_a_forged_role_is_refused(api, client, client_headers):
    number = client["client_number"]
    token = client_headers["Authorization"].split(" ", 1)[1]
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})

    # The role rewritten in a real token: the signature no longer matches.
    tampered = f"{header}.{_b64(claims | {'role': 'admin'})}.{signature}"
    # Even signed with auth's own key, a client subject with a staff role is not accepted.
    ring = api.http.server.app[DEPS].keys.ring
    signed = ring.issue(sub=f"client:{number}", role="admin", name="Juana", ttl=60)
    odd_role = ring.issue(sub=f"client:{number}", role="root", name="Juana", ttl=60)

    for forged in (tampered, signed, odd_role):
        headers = {"Authorization": f"Bearer {forged}"}
        for method, path, body in staff_requests(number):
            response = await api.http.request(method, path, json=body, headers=headers)
            await problem(response, 401)
        await problem(await api.http.get("/v1/me", headers=headers), 401)


async def test_operator_subject_claiming_client_role_is_refused(api):
    ring = api.http.server.app[DEPS].keys.ring
    forged = ring.issue(sub="operator:1", role="client", name="Ada", ttl=60)
    response = await api.http.patch(
        "/v1/me", json={"language": "en"}, headers={"Authorization": f"Bearer {forged}"}
    )
    await problem(response, 401)
