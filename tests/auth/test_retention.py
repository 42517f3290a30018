"""Retention (SPEC 9.1): spent and expired tokens are purged a day later, login failures once
out of every window; what a request can still use stays."""

from services.auth.accounts import purge_spent
from services.auth.api import DEPS
from tests.auth.conftest import CLIENT_PASSWORD
from tests.auth.test_passwords import recovery_token

NEW_PASSWORD = CLIENT_PASSWORD + " renewed"


async def _count(pool, query: str) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(query)


async def test_purge_deletes_only_what_no_request_can_use(api, auth, client, event_tap, pool):
    number = client["client_number"]
    await api.token(number, CLIENT_PASSWORD)  # a login the reset below ends
    spent = await recovery_token(api, event_tap, count=1)
    reset = {"token": spent, "password": NEW_PASSWORD}
    assert (await api.http.post("/v1/password-reset", json=reset)).status == 204
    live = await recovery_token(api, event_tap, count=2)
    pair = await api.token(number, NEW_PASSWORD)
    for _ in range(3):
        await api.http.post("/v1/token", json={"username": "stranger", "password": "x" * 20})
    async with pool.acquire() as conn:
        # Two days pass for what was spent; the live link and login are still in their time.
        for statement in (
            "UPDATE password_tokens SET used_at = now() - interval '2 days'"
            " WHERE used_at IS NOT NULL",
            "UPDATE refresh_tokens SET revoked_at = now() - interval '2 days'"
            " WHERE revoked_at IS NOT NULL",
            "UPDATE login_failures SET failed_at = now() - interval '2 hours'",
        ):
            await conn.execute(statement)
    revoked = "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL"
    assert await _count(pool, revoked) >= 1
    links = await _count(pool, "SELECT count(*) FROM password_tokens")

    await purge_spent(pool, auth.server.app[DEPS].settings)

    assert await _count(pool, "SELECT count(*) FROM login_failures") == 0
    assert await _count(pool, "SELECT count(*) FROM password_tokens") == links - 1
    assert await _count(pool, revoked) == 0
    # What is still in its time works.
    refresh = {"refresh_token": pair["refresh_token"]}
    assert (await api.http.post("/v1/token/refresh", json=refresh)).status == 200
    reset = {"token": live, "password": NEW_PASSWORD + " again"}
    assert (await api.http.post("/v1/password-reset", json=reset)).status == 204
