"""POST /v1/token, refresh, logout, JWKS and access-token verification (SPEC §4)."""

import base64
import json

import jwt

from services.auth import keys
from services.auth.api import DEPS
from tests.auth.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CLIENT_PASSWORD,
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    Api,
    bearer,
    problem,
)
from tests.support.waiting import wait_for


async def login(api, username, password):
    return await api.http.post("/v1/token", json={"username": username, "password": password})


async def me_status(api, pair_or_headers) -> int:
    headers = pair_or_headers if "Authorization" in pair_or_headers else bearer(pair_or_headers)
    response = await api.http.get("/v1/me", headers=headers)
    return response.status


async def test_client_logs_in_with_client_number(api, client):
    response = await login(api, client["client_number"], CLIENT_PASSWORD)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    pair = await response.json()
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    assert pair["access_token"] and pair["refresh_token"]
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["sub"] == f"client:{client['client_number']}"
    assert claims["role"] == "client"
    assert await me_status(api, pair) == 200


async def test_client_number_may_arrive_as_a_json_number(api, client):
    response = await login(api, int(client["client_number"]), CLIENT_PASSWORD)
    assert response.status == 200


async def test_operator_logs_in_with_email_in_any_case(api):
    for username in (OPERATOR_EMAIL, OPERATOR_EMAIL.upper(), f"  {OPERATOR_EMAIL.title()} "):
        response = await login(api, username, OPERATOR_PASSWORD)
        assert response.status == 200, (username, await response.text())
        claims = jwt.decode(
            (await response.json())["access_token"],
            options={"verify_signature": False},
        )
        assert claims["role"] == "operator"


async def test_wrong_password_and_unknown_user_answer_alike(api, client):
    answers = []
    for username, password in (
        (client["client_number"], "not the client passphrase at all"),
        ("999999999", CLIENT_PASSWORD),
        (OPERATOR_EMAIL, "not the operator passphrase"),
        ("nobody@helpdesk.example", OPERATOR_PASSWORD),
        ("not-a-number-nor-email", "whatever password"),
    ):
        response = await login(api, username, password)
        body = await problem(response, 401)
        assert "WWW-Authenticate" in response.headers
        answers.append((body["type"], body["title"], body["detail"]))
    assert len(set(answers)) == 1, answers


async def test_ten_failures_throttle_even_the_right_password_until_the_window_passes(
    api, client, pool
):
    number = client["client_number"]
    for _ in range(10):
        response = await login(api, number, "a wrong password, guessed")
        assert response.status == 401
    for password in ("a wrong password, guessed", CLIENT_PASSWORD):
        response = await login(api, number, password)
        body = await problem(response, 429)
        retry_after = int(response.headers["Retry-After"])
        assert 1 <= retry_after <= 900, retry_after
        assert "access_token" not in body

    # Another username is not affected.
    assert (await login(api, OPERATOR_EMAIL, OPERATOR_PASSWORD)).status == 200

    # One failure leaving the window is not enough while ten remain in it...
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE login_failures SET failed_at = failed_at - interval '16 minutes'"
            " WHERE id = (SELECT min(id) FROM login_failures WHERE username = $1)",
            number,
        )
    assert (await login(api, number, "a wrong password, guessed")).status == 401
    assert (await login(api, number, CLIENT_PASSWORD)).status == 429

    # ...but once the failures are older than 15 minutes, the right password works again.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE login_failures SET failed_at = failed_at - interval '16 minutes'"
            " WHERE username = $1",
            number,
        )
    assert (await login(api, number, CLIENT_PASSWORD)).status == 200


async def test_throttle_counts_an_email_in_any_case_as_one_username(api):
    for i in range(10):
        email = OPERATOR_EMAIL.upper() if i % 2 else OPERATOR_EMAIL
        assert (await login(api, email, "wrong operator password")).status == 401
    response = await login(api, OPERATOR_EMAIL.title(), OPERATOR_PASSWORD)
    await problem(response, 429)
    assert "Retry-After" in response.headers


async def refresh(api, token):
    return await api.http.post("/v1/token/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_the_old_refresh_token_stops_working(api, client):
    first = await api.token(client["client_number"], CLIENT_PASSWORD)
    response = await refresh(api, first["refresh_token"])
    assert response.status == 200
    second = await response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert await me_status(api, second) == 200

    response = await refresh(api, first["refresh_token"])
    await problem(response, 401)


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(api, client):
    first = await api.token(client["client_number"], CLIENT_PASSWORD)
    second = await (await refresh(api, first["refresh_token"])).json()
    third = await (await refresh(api, second["refresh_token"])).json()
    other_login = await api.token(client["client_number"], CLIENT_PASSWORD)

    # Someone replays the first (spent) token: the family is revoked...
    await problem(await refresh(api, first["refresh_token"]), 401)
    # ...so the newest token of that family stops working too,
    await problem(await refresh(api, third["refresh_token"]), 401)
    # while another login (another family) is untouched.
    assert (await refresh(api, other_login["refresh_token"])).status == 200


async def test_unknown_refresh_token_is_401(api):
    await problem(await refresh(api, "no-such-refresh-token"), 401)


async def test_expired_refresh_token_is_401(api, client, pool):
    pair = await api.token(client["client_number"], CLIENT_PASSWORD)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
    await problem(await refresh(api, pair["refresh_token"]), 401)


async def test_logout_ends_the_login(api, client):
    pair = await api.token(client["client_number"], CLIENT_PASSWORD)
    renewed = await (await refresh(api, pair["refresh_token"])).json()
    response = await api.http.post("/v1/logout", json={"refresh_token": renewed["refresh_token"]})
    assert response.status == 204
    assert await response.read() == b""
    await problem(await refresh(api, renewed["refresh_token"]), 401)
    # Logging out again (or with an unknown token) is harmless.
    response = await api.http.post("/v1/logout", json={"refresh_token": renewed["refresh_token"]})
    assert response.status == 204


async def test_jwks_serves_the_key_that_verifies_access_tokens(api, client):
    response = await api.http.get("/.well-known/jwks.json")
    assert response.status == 200
    document = await response.json()
    pair = await api.token(client["client_number"], CLIENT_PASSWORD)
    kid = jwt.get_unverified_header(pair["access_token"])["kid"]
    by_kid = {k["kid"]: k for k in document["keys"]}
    assert by_kid[kid]["kty"] == "EC" and by_kid[kid]["alg"] == "ES256"
    assert "d" not in by_kid[kid]  # never the private part
    key = jwt.PyJWK(by_kid[kid], algorithm="ES256")
    claims = jwt.decode(pair["access_token"], key, algorithms=["ES256"], audience="helpdesk")
    assert claims["sub"] == f"client:{client['client_number']}"


async def test_access_token_keeps_verifying_after_rotation_while_new_tokens_use_the_new_key(
    api, client, pool
):
    app = api.http.server.app
    old = await api.token(client["client_number"], CLIENT_PASSWORD)
    old_kid = jwt.get_unverified_header(old["access_token"])["kid"]

    async with pool.acquire() as conn:
        new_key = await keys.rotate(conn)
    await app[DEPS].keys.reload()

    new = await api.token(client["client_number"], CLIENT_PASSWORD)
    assert jwt.get_unverified_header(new["access_token"])["kid"] == new_key.kid != old_kid
    assert await me_status(api, old) == 200
    assert await me_status(api, new) == 200
    kids = {k["kid"] for k in (await (await api.http.get("/.well-known/jwks.json")).json())["keys"]}
    assert {old_kid, new_key.kid} <= kids

    # Once every token the old key signed has expired, the old key is gone.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE signing_keys SET retired_at = now() - interval '1 day' WHERE kid = $1", old_kid
        )
    await app[DEPS].keys.reload()
    response = await api.http.get("/v1/me", headers=bearer(old))
    await problem(response, 401)
    assert await me_status(api, new) == 200


async def test_another_instance_follows_a_rotation_made_elsewhere(make_auth, api, client, pool):
    other = await make_auth()
    async with pool.acquire() as conn:
        await keys.rotate(conn)
    await api.http.server.app[DEPS].keys.reload()
    pair = await api.token(client["client_number"], CLIENT_PASSWORD)
    # The other instance has not reloaded yet (its periodic reload is a minute away): an
    # unknown kid makes it look again, at most once a second, so it accepts the token shortly.

    async def accepted() -> bool:
        return (await other.get("/v1/me", headers=bearer(pair))).status == 200

    await wait_for(accepted, timeout=5, message="the other instance to accept the new kid")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_expired_garbage_or_missing_token_is_401_with_www_authenticate(api, client):
    app = api.http.server.app
    ring = app[DEPS].keys.ring
    sub = f"client:{client['client_number']}"
    expired = ring.issue(sub=sub, role="client", name="Juana", ttl=-60)
    valid = ring.issue(sub=sub, role="client", name="Juana", ttl=60)
    header, payload, signature = valid.split(".")
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + payload + "."
    hs256 = jwt.encode(
        {"sub": sub, "role": "client"},
        "a-32-byte-or-longer-hmac-secret-for-tests",
        algorithm="HS256",
        headers={"kid": jwt.get_unverified_header(valid)["kid"]},
    )
    cases = {
        "expired": {"Authorization": f"Bearer {expired}"},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "bad signature": {"Authorization": f"Bearer {header}.{payload}.{signature[::-1]}"},
        "alg none": {"Authorization": f"Bearer {unsigned}"},
        "hs256": {"Authorization": f"Bearer {hs256}"},
        "missing": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    }
    for name, headers in cases.items():
        response = await api.http.get("/v1/me", headers=headers)
        await problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
    assert (
        await api.http.get("/v1/me", headers={"Authorization": f"Bearer {valid}"})
    ).status == 200


async def test_admin_token_carries_the_admin_role(api, admin):
    pair = await api.token(ADMIN_EMAIL, ADMIN_PASSWORD)
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["role"] == "admin" and claims["sub"].startswith("operator:")


async def test_leading_zeros_do_not_escape_the_throttle(api, client):
    number = client["client_number"]
    for i in range(10):
        assert (await login(api, number, "a wrong password, guessed")).status == 401, i
    for spelling in ("0" + number, "000" + number, f" {number} "):
        response = await login(api, spelling, "a wrong password, guessed")
        await problem(response, 429)
        response = await login(api, spelling, CLIENT_PASSWORD)
        await problem(response, 429)


async def test_client_number_with_leading_zeros_logs_in(api, client):
    assert (await login(api, "00" + client["client_number"], CLIENT_PASSWORD)).status == 200


async def test_login_moves_the_hash_to_raised_argon2_settings(api, client, make_auth, pool):
    number = int(client["client_number"])
    async with pool.acquire() as conn:
        before = await conn.fetchval(
            "SELECT password_hash FROM clients WHERE client_number = $1", number
        )
    # Another instance with a costlier Argon2: the next login there rehashes the password.
    raised = Api(await make_auth(argon2_time_cost=2, argon2_memory_cost=2048))
    await raised.token(client["client_number"], CLIENT_PASSWORD)
    async with pool.acquire() as conn:
        after = await conn.fetchval(
            "SELECT password_hash FROM clients WHERE client_number = $1", number
        )
    assert before.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert after.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    # The new hash still verifies, and a login at the same settings leaves it alone.
    await raised.token(client["client_number"], CLIENT_PASSWORD)
    async with pool.acquire() as conn:
        again = await conn.fetchval(
            "SELECT password_hash FROM clients WHERE client_number = $1", number
        )
    assert again == after
