"""Schemathesis against the running tickets' own OpenAPI document, as a client and as an admin:
no 5xx, and every answer (status, content type, body) is one the document allows."""

import pytest

from deploy.processes import Service, auth_env, clean_env, create_operator
from tests.support.schemathesis import assert_conforms
from tests.support.sealing import SEALING_ENV
from tests.support.tickets_api import open_when_known

ADMIN_EMAIL = "fuzz-admin@helpdesk.example"
ADMIN_PASSWORD = "a fuzzing admin passphrase"
CLIENT_PASSWORD = "a fuzzing client passphrase"


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    databases, amqp_url, tmp_path
):
    env = auth_env(await databases.empty("auth"), amqp_url, **SEALING_ENV)
    code, _, err = await create_operator(env, ADMIN_EMAIL, ADMIN_PASSWORD, name="Fuzz Admin")
    assert code == 0, err
    auth = await Service("auth", env, tmp_path).start()
    tickets = None
    try:
        await auth.wait_ready()
        tickets_env = clean_env(
            HELPDESK_AMQP_URL=amqp_url,
            TICKETS_DATABASE_URL=await databases.empty("tickets"),
            TICKETS_AUTH_URL=auth.url,
        )
        tickets = await Service("tickets", tickets_env, tmp_path).start()
        # Its queues declared before auth publishes the client below.
        await tickets.wait_ready()
        status, admin = await auth.request(
            "POST", "/v1/token", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert status == 200, admin
        admin_headers = {"Authorization": f"Bearer {admin['access_token']}"}
        status, client = await auth.request(
            "POST",
            "/v1/clients",
            json={
                "name": "Fuzz Cliente",
                "email": "fuzz@example.com",
                "services": [{"name": "Hosting"}],
                "password": CLIENT_PASSWORD,
            },
            headers=admin_headers,
        )
        assert status == 201, client
        status, pair = await auth.request(
            "POST",
            "/v1/token",
            json={"username": client["client_number"], "password": CLIENT_PASSWORD},
        )
        assert status == 200, pair
        await tickets.wait_ready()

        # Once the client's services reached tickets, they have a ticket to be found.
        await open_when_known(
            tickets,
            {"Authorization": f"Bearer {pair['access_token']}"},
            {"service_id": client["services"][0]["id"], "category_id": 1, "body": "x"},
            timeout=15,
            message="the client's services in tickets",
        )

        await assert_conforms(
            tickets.url,
            {"client": pair["access_token"], "admin": admin["access_token"]},
            tmp_path,
            max_examples=30,
            timeout=90,
        )
        assert "http.unhandled_error" not in tickets.log(), tickets.log()[-5000:]
    finally:
        if tickets is not None:
            await tickets.stop()
        await auth.stop()
