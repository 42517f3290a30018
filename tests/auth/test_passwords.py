"""POST /v1/password-recovery and POST /v1/password-reset (SPEC §4, §6)."""

from tests.auth.conftest import CLIENT_PASSWORD, problem
from tests.support.sealing import opened

NEW_PASSWORD = "my recovered passphrase"


async def recover(api, email):
    return await api.http.post("/v1/password-recovery", json={"email": email})


async def reset(api, token, password):
    return await api.http.post("/v1/password-reset", json={"token": token, "password": password})


async def test_recovery_is_202_for_known_and_unknown_emails_alike(api, client, event_tap, pool):
    known = await recover(api, "juana@example.com")
    unknown = await recover(api, "nobody@example.com")
    assert known.status == unknown.status == 202
    assert await known.read() == await unknown.read()
    await event_tap.wait("auth.password_recovery.requested")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM password_tokens") == 1
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE routing_key = 'auth.password_recovery.requested'"
            )
            == 1
        )


async def test_every_client_with_the_email_gets_its_own_event(api, admin, event_tap):
    first = await api.create_client(admin, email="shared@example.com", language="en")
    second = await api.create_client(admin, email="Shared@Example.com")
    await api.create_client(admin, email="other@example.com")

    assert (await recover(api, "SHARED@example.com")).status == 202
    events = await event_tap.wait("auth.password_recovery.requested", count=2)
    by_number = {e["data"]["client_number"]: e["data"] for e in events}
    assert set(by_number) == {first["client_number"], second["client_number"]}
    assert by_number[first["client_number"]]["language"] == "en"
    assert by_number[second["client_number"]]["language"] == "es"
    for data in by_number.values():
        assert set(data) == {"client_number", "email", "language", "reset_token"}
        assert data["email"].lower() == "shared@example.com"
    tokens = {opened(d["reset_token"]) for d in by_number.values()}
    assert len(tokens) == 2

    # Each token sets the password of its own account only.
    token = opened(by_number[second["client_number"]]["reset_token"])
    assert (await reset(api, token, NEW_PASSWORD)).status == 204
    await api.token(second["client_number"], NEW_PASSWORD)
    await api.token(first["client_number"], CLIENT_PASSWORD)


async def recovery_token(api, event_tap, email="juana@example.com", count=1) -> str:
    assert (await recover(api, email)).status == 202
    events = await event_tap.wait("auth.password_recovery.requested", count=count)
    return opened(events[-1]["data"]["reset_token"])


async def test_reset_token_works_once(api, client, event_tap):
    number = client["client_number"]
    token = await recovery_token(api, event_tap)
    response = await reset(api, token, NEW_PASSWORD)
    assert response.status == 204
    await problem(
        await api.http.post("/v1/token", json={"username": number, "password": CLIENT_PASSWORD}),
        401,
    )
    await api.token(number, NEW_PASSWORD)

    await problem(await reset(api, token, "yet another passphrase here"), 400)
    await api.token(number, NEW_PASSWORD)


async def test_reset_ends_existing_logins_and_other_links(api, client, event_tap):
    pair = await api.token(client["client_number"], CLIENT_PASSWORD)
    first = await recovery_token(api, event_tap)
    second = await recovery_token(api, event_tap, count=2)
    assert (await reset(api, second, NEW_PASSWORD)).status == 204
    await problem(await reset(api, first, "a different passphrase"), 400)
    response = await api.http.post(
        "/v1/token/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    await problem(response, 401)


async def test_expired_token_is_400(api, client, event_tap, pool):
    token = await recovery_token(api, event_tap)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE password_tokens SET expires_at = now() - interval '1 second'")
    await problem(await reset(api, token, NEW_PASSWORD), 400)
    await api.token(client["client_number"], CLIENT_PASSWORD)


async def test_token_lives_about_an_hour(api, client, event_tap, pool):
    await recovery_token(api, event_tap)
    async with pool.acquire() as conn:
        life = await conn.fetchval("SELECT expires_at - created_at FROM password_tokens")
    assert life.total_seconds() == 3600


async def test_unknown_token_is_400(api):
    body = await problem(await reset(api, "no-such-token", NEW_PASSWORD), 400)
    assert "errors" not in body


async def test_refused_password_is_422_and_the_token_stays_usable(api, client, event_tap):
    token = await recovery_token(api, event_tap)
    for weak in ("qwertyuiop12345", "password12345678", client["client_number"] * 3):
        body = await problem(await reset(api, token, weak), 422)
        assert [e["field"] for e in body["errors"]] == ["password"], body
    body = await problem(await reset(api, token, "short"), 422)
    assert [e["field"] for e in body["errors"]] == ["password"]
    assert (await reset(api, token, NEW_PASSWORD)).status == 204
    await api.token(client["client_number"], NEW_PASSWORD)


async def test_reset_lifts_the_login_throttle(api, client, event_tap):
    number = client["client_number"]
    for _ in range(10):
        await api.http.post("/v1/token", json={"username": number, "password": "wrong guess here"})
    response = await api.http.post(
        "/v1/token", json={"username": number, "password": CLIENT_PASSWORD}
    )
    assert response.status == 429
    token = await recovery_token(api, event_tap)
    assert (await reset(api, token, NEW_PASSWORD)).status == 204
    await api.token(number, NEW_PASSWORD)


async def test_recovery_refuses_a_bad_email_with_422(api, pool):
    for body in ({"email": "not an email"}, {}, {"email": "a@b.example", "x": 1}):
        response = await api.http.post("/v1/password-recovery", json=body)
        await problem(response, 422)
    assert (await recover(api, "ghost@example.com")).status == 202
    # Nothing is stored, so nothing will be published, for an email nobody has.
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM password_tokens") == 0
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE routing_key LIKE 'auth.password_recovery.%'"
            )
            == 0
        )


async def test_recovery_emails_are_limited_to_three_an_hour_per_account(
    api, client, event_tap, pool
):
    for _ in range(5):
        assert (await recover(api, "juana@example.com")).status == 202
    await event_tap.wait("auth.password_recovery.requested", count=3)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM password_tokens") == 3
        # An hour later, a new request is answered again.
        await conn.execute("UPDATE password_tokens SET created_at = now() - interval '61 minutes'")
    assert (await recover(api, "juana@example.com")).status == 202
    await event_tap.wait("auth.password_recovery.requested", count=4)
