"""GET/PATCH /v1/me and PUT /v1/me/password (SPEC §4)."""

from tests.auth.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CLIENT_PASSWORD,
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    problem,
)

NEW_PASSWORD = "a brand new passphrase for juana"


async def test_client_sees_own_profile_with_services(api, client, client_headers):
    response = await api.http.get("/v1/me", headers=client_headers)
    assert response.status == 200
    me = await response.json()
    assert me == {
        "kind": "client",
        "client_number": client["client_number"],
        "name": "Juana Pérez",
        "email": "juana@example.com",
        "language": "es",
        "services": client["services"],
    }
    assert me["services"][0]["name"] == "Hosting Linux Plus — example.com"
    assert isinstance(me["services"][0]["id"], int)


async def test_operator_and_admin_see_role_and_no_client_number(api, operator, admin):
    for headers, role, email in (
        (operator, "operator", OPERATOR_EMAIL),
        (admin, "admin", ADMIN_EMAIL),
    ):
        response = await api.http.get("/v1/me", headers=headers)
        assert response.status == 200
        me = await response.json()
        assert me["kind"] == "operator"
        assert me["role"] == role
        assert me["email"] == email
        assert me["language"] in ("es", "en")
        assert "client_number" not in me and "services" not in me


async def test_patch_me_changes_the_language_and_publishes_only_changes(
    api, client, client_headers, event_tap
):
    number = client["client_number"]
    response = await api.http.patch("/v1/me", json={"language": "en"}, headers=client_headers)
    assert response.status == 200
    me = await response.json()
    assert (me["email"], me["language"]) == ("juana@example.com", "en")

    # Nothing changes: no event.
    response = await api.http.patch("/v1/me", json={"language": "en"}, headers=client_headers)
    assert response.status == 200
    response = await api.http.patch("/v1/me", json={"language": "es"}, headers=client_headers)
    assert response.status == 200

    events = await event_tap.wait("auth.client.updated", count=2)
    changed = [e["data"] for e in events if e["data"]["client_number"] == number]
    assert changed == [
        {"client_number": number, "language": "en"},
        {"client_number": number, "language": "es"},
    ]
    assert all(e["type"] == "auth.client.updated" and e["version"] == 1 for e in events)


async def test_patch_me_refuses_bad_input(api, client_headers):
    for body, field in (
        # SPEC 9.1: the email is changed through POST /v1/me/email only.
        ({"email": "juana.nueva@example.com"}, "email"),
        ({"language": "fr"}, "language"),
        ({"name": "Another Name"}, "name"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "x" * 65}, "time_zone"),
    ):
        response = await api.http.patch("/v1/me", json=body, headers=client_headers)
        errors = (await problem(response, 422))["errors"]
        assert [e["field"] for e in errors] == [field], errors


async def test_the_time_zone_is_kept_on_the_account(api, client_headers, operator):
    # The panel shows each account's dates in its zone, on any device it logs in from.
    for headers, zone in ((client_headers, "America/Argentina/Buenos_Aires"), (operator, "UTC")):
        response = await api.http.patch("/v1/me", json={"time_zone": zone}, headers=headers)
        assert response.status == 200 and (await response.json())["time_zone"] == zone
        response = await api.http.get("/v1/me", headers=headers)
        assert (await response.json())["time_zone"] == zone


async def test_an_operators_language_is_an_admins_to_set(api, operator, admin):
    for headers in (operator, admin):
        response = await api.http.patch("/v1/me", json={"language": "en"}, headers=headers)
        errors = (await problem(response, 422))["errors"]
        assert [e["field"] for e in errors] == ["language"]


async def change_password(api, headers, current, new):
    return await api.http.put(
        "/v1/me/password",
        json={"current_password": current, "new_password": new},
        headers=headers,
    )


async def test_password_change_with_right_current_password(api, client, client_headers):
    response = await change_password(api, client_headers, CLIENT_PASSWORD, NEW_PASSWORD)
    assert response.status == 204
    old = await api.http.post(
        "/v1/token", json={"username": client["client_number"], "password": CLIENT_PASSWORD}
    )
    await problem(old, 401)
    await api.token(client["client_number"], NEW_PASSWORD)


async def test_password_change_ends_other_logins(api, client):
    pair = await api.token(client["client_number"], CLIENT_PASSWORD)
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await change_password(api, headers, CLIENT_PASSWORD, NEW_PASSWORD)).status == 204
    response = await api.http.post(
        "/v1/token/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    await problem(response, 401)


async def test_password_change_with_wrong_current_password_is_400(api, client, client_headers):
    response = await change_password(api, client_headers, "not my current password", NEW_PASSWORD)
    await problem(response, 400)
    await api.token(client["client_number"], CLIENT_PASSWORD)


async def test_wrong_current_passwords_count_towards_the_login_throttle(
    api, client, client_headers
):
    for _ in range(10):
        response = await change_password(api, client_headers, "a wrong guess at it", NEW_PASSWORD)
        await problem(response, 400)
    # A stolen session may not go on guessing here, nor at the login, from that address.
    response = await change_password(api, client_headers, CLIENT_PASSWORD, NEW_PASSWORD)
    await problem(response, 429)
    response = await api.http.post(
        "/v1/token", json={"username": client["client_number"], "password": CLIENT_PASSWORD}
    )
    await problem(response, 429)


async def test_a_right_current_password_never_counts_as_a_failure(api, client, client_headers):
    for _ in range(11):  # the new one refused each time (too short)
        response = await change_password(api, client_headers, CLIENT_PASSWORD, "short")
        await problem(response, 422)
    await api.token(client["client_number"], CLIENT_PASSWORD)


async def test_operator_changes_own_password(api):
    headers = await api.bearer(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    response = await change_password(api, headers, OPERATOR_PASSWORD, NEW_PASSWORD)
    assert response.status == 204
    await api.token(OPERATOR_EMAIL, NEW_PASSWORD)
    assert (
        await api.http.post(
            "/v1/token", json={"username": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
        )
    ).status == 401


async def test_refused_new_passwords_are_422_naming_the_field(api, client, client_headers):
    for new in (
        "too short",
        "qwertyuiop12345",
        "password12345678",
        "x" * 257,
        "abcdefghijklmnopqrstuvwxyz",
        "aaaaaaaaaaaaaaaaaaaa",
        client["client_number"] + "0000000",
        "juana@example.com",
    ):
        response = await change_password(api, client_headers, CLIENT_PASSWORD, new)
        body = await problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["new_password"], (new, body)
    # The password did not change.
    await api.token(client["client_number"], CLIENT_PASSWORD)


async def test_longest_password_is_kept_whole(api, client, client_headers):
    longest = ("correct horse battery staple " * 9)[:256]
    assert (await change_password(api, client_headers, CLIENT_PASSWORD, longest)).status == 204
    await api.token(client["client_number"], longest)
    # Never truncated: a prefix is not the password.
    response = await api.http.post(
        "/v1/token", json={"username": client["client_number"], "password": longest[:255]}
    )
    assert response.status == 401


async def test_admin_password_change(api):
    headers = await api.bearer(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert (await change_password(api, headers, ADMIN_PASSWORD, NEW_PASSWORD)).status == 204
