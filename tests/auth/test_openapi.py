"""Schemathesis against the running auth's own OpenAPI document: no 5xx, and every answer
(status, content type, body) is one the document allows."""

import pytest

from deploy.processes import Service, auth_env, create_operator
from tests.support.schemathesis import assert_conforms
from tests.support.sealing import SEALING_ENV

ADMIN_EMAIL = "fuzz-admin@helpdesk.example"
ADMIN_PASSWORD = "a fuzzing admin passphrase"
FUZZ_CLIENT = {
    "name": "Fuzz Client",
    "email": "fuzz@example.com",
    "password": "a fuzzing client passphrase",
}


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    databases, amqp_url, tmp_path
):
    env = auth_env(await databases.empty("auth"), amqp_url, **SEALING_ENV)
    code, _, err = await create_operator(env, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert code == 0, err
    auth = await Service("auth", env, tmp_path).start()
    try:
        await auth.wait_ready()
        status, pair = await auth.request(
            "POST", "/v1/token", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert status == 200, pair
        admin = {"Authorization": f"Bearer {pair['access_token']}"}
        status, client = await auth.request("POST", "/v1/clients", json=FUZZ_CLIENT, headers=admin)
        assert status == 201, client
        status, client_pair = await auth.request(
            "POST",
            "/v1/token",
            json={"username": client["client_number"], "password": FUZZ_CLIENT["password"]},
        )
        assert status == 200, client_pair

        # As an admin (every staff route) and as a client (PATCH /v1/me and the like).
        await assert_conforms(
            auth.url,
            {"admin": pair["access_token"], "client": client_pair["access_token"]},
            tmp_path,
            max_examples=25,
            timeout=150,
        )
        assert "Internal Server Error" not in auth.log()
    finally:
        await auth.stop()
