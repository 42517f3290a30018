"""The admin routes of SPEC 9.1: finding and changing clients and operators, disabling them."""

import pytest

from services.auth import models
from services.auth.admin import leaves_an_admin
from tests.auth.conftest import (
    ADMIN_EMAIL,
    CLIENT_PASSWORD,
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    problem,
)
from tests.support.waiting import wait_for


async def login(api, username, password):
    return await api.http.post("/v1/token", json={"username": username, "password": password})


async def list_clients(api, headers, **params):
    response = await api.http.get("/v1/clients", params=params, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_clients_are_found_by_number_name_or_email_and_paginated(api, admin, operator):
    made = [
        await api.create_client(admin, name=f"Cliente {i}", email=f"c{i}@example.com")
        for i in range(5)
    ]
    await api.create_client(admin, name="Rosa 100%_x", email="rosa@otro.example")
    numbers = [c["client_number"] for c in made]

    first = await list_clients(api, operator, q="example.com", limit=2)
    assert [c["client_number"] for c in first["items"]] == numbers[:2]
    assert first["items"][0]["services"][0]["name"].startswith("Hosting")
    assert first["items"][0]["disabled"] is False
    seen = [c["client_number"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = await list_clients(api, operator, q="example.com", limit=2, cursor=cursor)
        seen += [c["client_number"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == numbers

    assert [
        c["client_number"] for c in (await list_clients(api, operator, q=numbers[3]))["items"]
    ] == [numbers[3]]
    by_name = await list_clients(api, operator, q="cliente 2")
    assert [c["client_number"] for c in by_name["items"]] == [numbers[2]]
    # LIKE's wildcards are matched as themselves.
    assert [c["name"] for c in (await list_clients(api, operator, q="100%_"))["items"]] == [
        "Rosa 100%_x"
    ]
    assert (await list_clients(api, operator, q="%x"))["items"] == []
    everyone = await list_clients(api, admin)
    assert len(everyone["items"]) == 6 and everyone["next_cursor"] is None


async def test_listing_clients_needs_staff_and_a_valid_query(api, admin, client_headers):
    await problem(await api.http.get("/v1/clients", headers=client_headers), 403)
    await problem(await api.http.get("/v1/clients"), 401)
    for params in ({"limit": "0"}, {"limit": "101"}, {"cursor": "garbage"}, {"x": "1"}):
        response = await api.http.get("/v1/clients", params=params, headers=admin)
        await problem(response, 422)


async def test_admin_edits_a_client_and_the_change_is_published(api, admin, client, event_tap):
    number = client["client_number"]
    response = await api.http.patch(
        f"/v1/clients/{number}",
        json={"name": "Juana P. Gómez", "email": "jpg@example.com", "language": "en"},
        headers=admin,
    )
    assert response.status == 200
    body = await response.json()
    assert (body["name"], body["email"], body["language"]) == (
        "Juana P. Gómez",
        "jpg@example.com",
        "en",
    )
    [event] = await event_tap.wait("auth.client.updated")
    assert event["data"] == {
        "client_number": number,
        "name": "Juana P. Gómez",
        "email": "jpg@example.com",
        "language": "en",
    }


async def test_only_admins_edit_clients(api, operator, client, client_headers):
    number = client["client_number"]
    for headers in (operator, client_headers):
        response = await api.http.patch(
            f"/v1/clients/{number}", json={"name": "X"}, headers=headers
        )
        await problem(response, 403)
    response = await api.http.patch("/v1/clients/999999999", json={"name": "X"}, headers={})
    await problem(response, 401)


async def test_patching_an_unknown_client_is_404_and_bad_fields_422(api, admin, client):
    await problem(
        await api.http.patch("/v1/clients/999999999", json={"name": "X"}, headers=admin), 404
    )
    for body in ({"email": "nope"}, {"language": "fr"}, {"client_number": "1"}, {"name": ""}):
        response = await api.http.patch(
            f"/v1/clients/{client['client_number']}", json=body, headers=admin
        )
        await problem(response, 422)


async def test_a_disabled_client_cannot_log_in_or_refresh(api, admin, client, pool):
    number = client["client_number"]
    pair = await api.token(number, CLIENT_PASSWORD)
    response = await api.http.patch(f"/v1/clients/{number}", json={"disabled": True}, headers=admin)
    assert response.status == 200 and (await response.json())["disabled"] is True

    # The same answer as a wrong password.
    disabled = await problem(await login(api, number, CLIENT_PASSWORD), 401)
    wrong = await problem(await login(api, number, "not the client password at all"), 401)
    assert disabled == wrong
    response = await api.http.post(
        "/v1/token/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    await problem(response, 401)
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT bool_and(revoked_at IS NOT NULL) FROM refresh_tokens WHERE subject = $1",
            f"client:{number}",
        )

    # Enabled again, it logs in (the old logins stay ended).
    response = await api.http.patch(
        f"/v1/clients/{number}", json={"disabled": False}, headers=admin
    )
    assert response.status == 200
    assert (await login(api, number, CLIENT_PASSWORD)).status == 200


async def test_operators_are_listed_for_staff(api, admin, operator):
    response = await api.http.get("/v1/operators", headers=operator)
    assert response.status == 200
    body = await response.json()
    assert [(o["email"], o["role"], o["disabled"]) for o in body["items"]] == [
        (ADMIN_EMAIL, "admin", False),
        (OPERATOR_EMAIL, "operator", False),
    ]
    assert body["next_cursor"] is None
    page = await (await api.http.get("/v1/operators?limit=1", headers=admin)).json()
    assert [o["email"] for o in page["items"]] == [ADMIN_EMAIL]
    rest = await (
        await api.http.get(f"/v1/operators?limit=1&cursor={page['next_cursor']}", headers=admin)
    ).json()
    assert [o["email"] for o in rest["items"]] == [OPERATOR_EMAIL]


async def operator_id(api, admin, email):
    body = await (await api.http.get("/v1/operators", headers=admin)).json()
    return next(o["id"] for o in body["items"] if o["email"] == email)


async def patch_operator(api, headers, ident, body):
    return await api.http.patch(f"/v1/operators/{ident}", json=body, headers=headers)


async def test_admin_changes_an_operators_role_and_name(api, admin):
    ident = await operator_id(api, admin, OPERATOR_EMAIL)
    response = await patch_operator(api, admin, ident, {"role": "admin", "name": "Oscar A."})
    assert response.status == 200
    body = await response.json()
    assert (body["role"], body["name"], body["disabled"]) == ("admin", "Oscar A.", False)
    pair = await api.token(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    response = await api.http.get(
        "/v1/me", headers={"Authorization": "Bearer " + pair["access_token"]}
    )
    assert (await response.json())["role"] == "admin"


async def test_a_disabled_operator_cannot_log_in_or_refresh(api, admin):
    pair = await api.token(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    ident = await operator_id(api, admin, OPERATOR_EMAIL)
    response = await patch_operator(api, admin, ident, {"disabled": True})
    assert response.status == 200 and (await response.json())["disabled"] is True
    await problem(await login(api, OPERATOR_EMAIL, OPERATOR_PASSWORD), 401)
    response = await api.http.post(
        "/v1/token/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    await problem(response, 401)


async def test_the_last_admin_is_never_demoted_nor_disabled(api, admin, pool):
    ident = await operator_id(api, admin, ADMIN_EMAIL)
    for change in ({"role": "operator"}, {"disabled": True}):
        body = await problem(await patch_operator(api, admin, ident, change), 409)
        assert "admin" in body["detail"]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT role, disabled FROM operators WHERE id = $1", ident)
    assert tuple(row) == ("admin", False)
    # With a second admin, the first may step down.
    other = await operator_id(api, admin, OPERATOR_EMAIL)
    assert (await patch_operator(api, admin, other, {"role": "admin"})).status == 200
    assert (await patch_operator(api, admin, ident, {"role": "operator"})).status == 200
    # ...and now the other one is the last.
    new_admin = await api.bearer(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    await problem(await patch_operator(api, new_admin, other, {"disabled": True}), 409)


async def test_two_admins_cannot_remove_each_other_at_once(api, admin):
    """Both requests at once: the advisory lock lets one through, the other sees the last
    admin and is refused, so one admin always remains."""
    import asyncio

    other = await operator_id(api, admin, OPERATOR_EMAIL)
    first = await operator_id(api, admin, ADMIN_EMAIL)
    assert (await patch_operator(api, admin, other, {"role": "admin"})).status == 200
    second_admin = await api.bearer(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    responses = await asyncio.gather(
        patch_operator(api, admin, other, {"disabled": True}),
        patch_operator(api, second_admin, first, {"disabled": True}),
    )
    assert sorted(r.status for r in responses) == [200, 409]


async def test_only_admins_change_operators(api, admin, operator):
    ident = await operator_id(api, admin, OPERATOR_EMAIL)
    await problem(await patch_operator(api, operator, ident, {"name": "X"}), 403)
    await problem(await patch_operator(api, admin, 999999, {"name": "X"}), 404)
    await problem(await patch_operator(api, admin, ident, {"role": "root"}), 422)
    await problem(await patch_operator(api, admin, ident, {"email": "x@example.com"}), 422)


@pytest.mark.parametrize(
    ("role", "disabled", "change", "admins", "left"),
    [
        ("admin", False, {"role": "operator"}, 1, False),
        ("admin", False, {"disabled": True}, 1, False),
        ("admin", False, {"name": "New"}, 1, True),
        ("admin", False, {"disabled": True}, 2, True),
        ("operator", False, {"disabled": True}, 1, True),
        ("admin", True, {"role": "operator"}, 1, True),  # a disabled admin is not counted
        ("operator", False, {"role": "admin"}, 0, True),
    ],
)
def test_leaves_an_admin(role, disabled, change, admins, left):
    patch = models.OperatorPatch(**change)
    assert leaves_an_admin(role=role, disabled=disabled, change=patch, admins=admins) is left


async def test_a_disabled_client_gets_no_recovery_link(api, admin, client, event_tap, pool):
    number = client["client_number"]
    response = await api.http.patch(f"/v1/clients/{number}", json={"disabled": True}, headers=admin)
    assert response.status == 200
    response = await api.http.post("/v1/password-recovery", json={"email": client["email"]})
    assert response.status == 202

    async def handled() -> bool:
        async with pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) = 0 FROM recovery_requests")

    await wait_for(handled, message="the recovery request handled")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM password_tokens") == 0
    assert event_tap.bodies("auth.password_recovery.requested") == []
