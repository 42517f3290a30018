"""POST /v1/clients, GET /v1/clients/{n}, POST /v1/clients/{n}/services, POST /v1/operators."""

from tests.auth.conftest import CLIENT_PASSWORD, problem
from tests.support.sealing import opened

SET_PASSWORD = "juana sets her own passphrase"


async def test_admin_creates_client_with_password(api, admin, event_tap, pool):
    response = await api.http.post(
        "/v1/clients",
        json={
            "name": "  Juana Pérez ",
            "email": "juana@example.com",
            "language": "en",
            "services": [{"name": "Hosting Linux Plus — example.com"}, {"name": "Dominio .es"}],
            "password": CLIENT_PASSWORD,
        },
        headers=admin,
    )
    assert response.status == 201, await response.text()
    client = await response.json()
    number = client["client_number"]
    assert number.isdigit()
    assert response.headers["Location"] == f"/v1/clients/{number}"
    assert client["name"] == "Juana Pérez"
    assert client["email"] == "juana@example.com" and client["language"] == "en"
    assert [s["name"] for s in client["services"]] == [
        "Hosting Linux Plus — example.com",
        "Dominio .es",
    ]
    assert all(isinstance(s["id"], int) for s in client["services"])
    assert client["created_at"].endswith(("Z", "+00:00"))

    (event,) = await event_tap.wait("auth.client.created")
    data = event["data"]
    assert data["client_number"] == number
    assert (data["name"], data["email"], data["language"]) == (
        "Juana Pérez",
        "juana@example.com",
        "en",
    )
    assert data["services"] == client["services"]
    assert data.get("set_password_token") is None
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM password_tokens") == 0

    await api.token(number, CLIENT_PASSWORD)


async def test_client_without_password_gets_a_set_password_token_that_works(api, admin, event_tap):
    client = await api.create_client(admin, password=None, email="sin.clave@example.com")
    number = client["client_number"]
    (event,) = await event_tap.wait("auth.client.created")
    sealed = event["data"]["set_password_token"]
    assert event["data"]["client_number"] == number and sealed
    token = opened(sealed)
    assert token not in sealed  # the event carries it sealed for the notifier

    # No password yet: nothing logs in.
    response = await api.http.post("/v1/token", json={"username": number, "password": "x" * 20})
    await problem(response, 401)

    response = await api.http.post(
        "/v1/password-reset", json={"token": token, "password": SET_PASSWORD}
    )
    assert response.status == 204
    await api.token(number, SET_PASSWORD)
    # The link is one-time.
    response = await api.http.post(
        "/v1/password-reset", json={"token": token, "password": SET_PASSWORD + " again"}
    )
    await problem(response, 400)


async def test_client_numbers_are_distinct(api, admin):
    first = await api.create_client(admin)
    second = await api.create_client(admin)  # the same email may hold several accounts
    assert first["client_number"] != second["client_number"]


async def test_create_client_refuses_bad_input_listing_each_field(api, admin, pool):
    base = {"name": "Juana", "email": "juana@example.com", "services": []}
    cases = [
        (base | {"email": "not-an-email"}, {"email"}),
        ({k: v for k, v in base.items() if k != "name"}, {"name"}),
        (base | {"name": "   "}, {"name"}),
        (base | {"phone": "555"}, {"phone"}),
        (base | {"language": "fr"}, {"language"}),
        (base | {"services": [{}]}, {"services.0.name"}),
        (base | {"password": "short"}, {"password"}),
        (base | {"password": "qwertyuiop12345"}, {"password"}),
        ({"email": "bad", "language": 3}, {"email", "language", "name"}),
    ]
    for body, fields in cases:
        response = await api.http.post("/v1/clients", json=body, headers=admin)
        errors = (await problem(response, 422))["errors"]
        assert {e["field"] for e in errors} == fields, (body, errors)
        assert all(e["message"] for e in errors)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM clients") == 0
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE routing_key LIKE 'auth.client.%'"
            )
            == 0
        )


async def test_operator_and_admin_read_a_client(api, admin, operator, client):
    for headers in (operator, admin):
        response = await api.http.get(f"/v1/clients/{client['client_number']}", headers=headers)
        assert response.status == 200
        assert await response.json() == client


async def test_unknown_client_is_404(api, operator):
    for number in ("1", "999999999", "9" * 30):
        response = await api.http.get(f"/v1/clients/{number}", headers=operator)
        await problem(response, 404)
    # Not a number at all: no such route.
    response = await api.http.get("/v1/clients/abc", headers=operator)
    await problem(response, 404)


async def test_admin_adds_a_service_and_the_full_list_is_published(api, admin, client, event_tap):
    number = client["client_number"]
    response = await api.http.post(
        f"/v1/clients/{number}/services", json={"name": "VPS — api.example.com"}, headers=admin
    )
    assert response.status == 201
    service = await response.json()
    assert set(service) == {"id", "name"} and service["name"] == "VPS — api.example.com"

    (event,) = await event_tap.wait("auth.client.updated")
    assert event["data"]["client_number"] == number
    assert event["data"]["services"] == [*client["services"], service]

    fetched = await (await api.http.get(f"/v1/clients/{number}", headers=admin)).json()
    assert fetched["services"] == [*client["services"], service]


async def test_adding_a_service_to_an_unknown_client_is_404(api, admin):
    response = await api.http.post(
        "/v1/clients/999999999/services", json={"name": "VPS"}, headers=admin
    )
    await problem(response, 404)
    response = await api.http.post("/v1/clients/999999999/services", json={}, headers=admin)
    await problem(response, 422)


async def create_operator(api, admin, **fields):
    body = {
        "email": "nuevo@helpdesk.example",
        "name": "Nuevo Operador",
        "role": "operator",
        "password": "the new operator passphrase",
    } | fields
    return await api.http.post("/v1/operators", json=body, headers=admin)


async def test_admin_creates_an_operator_who_logs_in(api, admin):
    response = await create_operator(api, admin)
    assert response.status == 201, await response.text()
    operator = await response.json()
    assert operator["email"] == "nuevo@helpdesk.example"
    assert operator["role"] == "operator" and operator["name"] == "Nuevo Operador"
    assert "password" not in operator and "password_hash" not in operator
    headers = await api.bearer("Nuevo@Helpdesk.example", "the new operator passphrase")
    me = await (await api.http.get("/v1/me", headers=headers)).json()
    assert me["kind"] == "operator" and me["role"] == "operator"


async def test_admin_creates_another_admin(api, admin):
    response = await create_operator(api, admin, role="admin", email="jefa@helpdesk.example")
    assert response.status == 201
    headers = await api.bearer("jefa@helpdesk.example", "the new operator passphrase")
    response = await api.http.post(
        "/v1/clients", json={"name": "X", "email": "x@example.com"}, headers=headers
    )
    assert response.status == 201


async def test_existing_operator_email_in_any_case_is_409(api, admin, pool):
    assert (await create_operator(api, admin)).status == 201
    for email in ("nuevo@helpdesk.example", "NUEVO@Helpdesk.Example"):
        response = await create_operator(api, admin, email=email, password="another passphrase ok")
        await problem(response, 409)
    async with pool.acquire() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM operators WHERE lower(email) = 'nuevo@helpdesk.example'"
        )
    assert count == 1
    # The first operator's password is unchanged.
    await api.token("nuevo@helpdesk.example", "the new operator passphrase")


async def test_create_operator_refuses_bad_input(api, admin):
    for body, field in (
        ({"role": "superuser"}, "role"),
        ({"email": "nope"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "qwertyuiop12345"}, "password"),
    ):
        response = await create_operator(api, admin, **body)
        errors = (await problem(response, 422))["errors"]
        assert [e["field"] for e in errors] == [field], errors


async def test_created_event_is_a_persistent_json_message_carrying_the_request_id(
    api, admin, event_tap
):
    request_id = "create-client-req-42"
    response = await api.http.post(
        "/v1/clients",
        json={"name": "Ana", "email": "ana@example.com", "password": CLIENT_PASSWORD},
        headers=admin | {"X-Request-ID": request_id},
    )
    assert response.status == 201
    assert response.headers["X-Request-ID"] == request_id
    (event,) = await event_tap.wait("auth.client.created")
    (message,) = [m for m in event_tap.messages if m.routing_key == "auth.client.created"]
    assert message.message_id == event["id"]
    assert message.type == "auth.client.created" == event["type"]
    assert message.content_type == "application/json"
    assert message.correlation_id == request_id
    assert message.delivery_mode == 2  # persistent
    assert event["version"] == 1 and event["occurred_at"]
