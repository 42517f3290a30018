"""POST /v1/me/email and POST /v1/email-confirmation (SPEC 9.1)."""

import pytest
from pydantic import ValidationError

from services.auth.settings import AuthSettings
from tests.auth.conftest import CLIENT_PASSWORD, bearer, problem
from tests.support.sealing import opened

NEW_EMAIL = "juana.nueva@example.com"


async def ask(api, headers, email=NEW_EMAIL, password=CLIENT_PASSWORD):
    return await api.http.post(
        "/v1/me/email", json={"email": email, "current_password": password}, headers=headers
    )


async def confirm(api, token):
    return await api.http.post("/v1/email-confirmation", json={"token": token})


async def requested(event_tap, count=1):
    events = await event_tap.wait("auth.email_change.requested", count=count)
    return events[-1]["data"]


async def test_change_sends_a_link_to_the_new_address_and_a_notice_to_the_old(
    api, client, client_headers, event_tap, pool
):
    number = client["client_number"]
    response = await ask(api, client_headers)
    assert response.status == 202
    assert await response.read() == b""
    data = await requested(event_tap)
    assert {k: v for k, v in data.items() if k != "confirm_token"} == {
        "client_number": number,
        "name": "Juana Pérez",
        "new_email": NEW_EMAIL,
        "language": "es",
    }
    [notice] = await event_tap.wait("auth.email_change.notice")
    assert notice["data"] == {
        "client_number": number,
        "name": "Juana Pérez",
        "email": "juana@example.com",
        "new_email": NEW_EMAIL,
        "language": "es",
    }
    # Nothing changes before the link is used; the token is kept only as a hash.
    me = await (await api.http.get("/v1/me", headers=client_headers)).json()
    assert me["email"] == "juana@example.com"
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM email_changes")
        token = opened(data["confirm_token"])  # the event carries it sealed for the notifier
        assert token not in data["confirm_token"]
        assert row["token_hash"] != token.encode()
        assert token not in repr(dict(row))
        hours = await conn.fetchval(
            "SELECT extract(epoch FROM expires_at - created_at) / 3600 FROM email_changes"
        )
    assert round(hours) == 24
    assert event_tap.bodies("auth.client.updated") == []


async def test_confirming_changes_the_email_once_and_ends_every_login(
    api, client, client_headers, event_tap
):
    number = client["client_number"]
    other_login = await api.token(number, CLIENT_PASSWORD)
    assert (await ask(api, client_headers)).status == 202
    token = opened((await requested(event_tap))["confirm_token"])

    response = await confirm(api, token)
    assert response.status == 204
    me = await (await api.http.get("/v1/me", headers=client_headers)).json()
    assert me["email"] == NEW_EMAIL
    [updated] = await event_tap.wait("auth.client.updated")
    assert updated["data"] == {"client_number": number, "email": NEW_EMAIL}
    # Every refresh token of the account stopped working.
    response = await api.http.post(
        "/v1/token/refresh", json={"refresh_token": other_login["refresh_token"]}
    )
    await problem(response, 401)
    # The link works once.
    await problem(await confirm(api, token), 400)


async def test_wrong_current_password_is_400_and_counts_towards_the_login_throttle(
    api, client, client_headers, event_tap, pool
):
    number = client["client_number"]
    for _ in range(10):
        await problem(await ask(api, client_headers, password="not my password at all"), 400)
    # The eleventh try is throttled like a login, even with the right password...
    response = await ask(api, client_headers)
    await problem(response, 429)
    assert "Retry-After" in response.headers
    # ...and so is logging in with it from the same address.
    response = await api.http.post(
        "/v1/token", json={"username": number, "password": CLIENT_PASSWORD}
    )
    await problem(response, 429)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM email_changes") == 0
        assert await conn.fetchval("SELECT count(*) FROM login_failures") == 10


async def test_missing_password_is_400_and_a_bad_email_422(api, client, client_headers):
    for without in ({}, {"current_password": ""}, {"current_password": None}):
        response = await api.http.post(
            "/v1/me/email", json={"email": NEW_EMAIL} | without, headers=client_headers
        )
        await problem(response, 400)
    errors = (await problem(await ask(api, client_headers, email="not an email"), 422))["errors"]
    assert [e["field"] for e in errors] == ["email"]
    errors = (await problem(await ask(api, client_headers, email="Juana@Example.com"), 422))[
        "errors"
    ]
    assert [e["field"] for e in errors] == ["email"]


async def test_operators_and_strangers_cannot_ask(api, operator):
    await problem(await ask(api, operator), 403)
    await problem(await ask(api, {}), 401)


async def test_unknown_and_expired_tokens_are_400(api, client, client_headers, event_tap, pool):
    await problem(await confirm(api, "no-such-token"), 400)
    assert (await ask(api, client_headers)).status == 202
    token = opened((await requested(event_tap))["confirm_token"])
    async with pool.acquire() as conn:
        await conn.execute("UPDATE email_changes SET expires_at = now() - interval '1 second'")
    await problem(await confirm(api, token), 400)
    me = await (await api.http.get("/v1/me", headers=client_headers)).json()
    assert me["email"] == "juana@example.com"


async def test_a_confirmed_change_voids_the_other_pending_links(
    api, client, client_headers, event_tap
):
    assert (await ask(api, client_headers, email="first@example.com")).status == 202
    first = opened((await requested(event_tap))["confirm_token"])
    assert (await ask(api, client_headers, email="second@example.com")).status == 202
    second = opened((await requested(event_tap, count=2))["confirm_token"])
    assert (await confirm(api, second)).status == 204
    await problem(await confirm(api, first), 400)
    pair = await api.token(client["client_number"], CLIENT_PASSWORD)
    me = await (await api.http.get("/v1/me", headers=bearer(pair))).json()
    assert me["email"] == "second@example.com"


@pytest.mark.parametrize("change", [{"disabled": True}, {"email": "juana.admin@example.com"}])
async def test_an_admins_change_voids_the_links_the_client_asked_for(
    api, admin, client, client_headers, event_tap, change
):
    # A link asked for before must neither undo the admin's new email nor act on a disabled
    # account.
    assert (await ask(api, client_headers)).status == 202
    token = opened((await requested(event_tap))["confirm_token"])
    number = client["client_number"]
    response = await api.http.patch(f"/v1/clients/{number}", json=change, headers=admin)
    assert response.status == 200
    await problem(await confirm(api, token), 400)
    response = await api.http.get(f"/v1/clients/{number}", headers=admin)
    assert (await response.json())["email"] == change.get("email", "juana@example.com")


async def test_a_client_asks_for_at_most_five_changes_a_day(api, client_headers, event_tap):
    # Each request emails two addresses: a stolen session must not become a mail cannon.
    for i in range(5):
        assert (await ask(api, client_headers, email=f"juana{i}@example.com")).status == 202
    response = await ask(api, client_headers, email="juana5@example.com")
    await problem(response, 429)
    assert 86_000 < int(response.headers["Retry-After"]) <= 86_400


def test_a_daily_limit_of_no_email_change_is_refused_at_start() -> None:
    # With none allowed, the answer past the limit would have no oldest change to count from.
    with pytest.raises(ValidationError, match="email_change_max_per_day"):
        AuthSettings(email_change_max_per_day=0)
