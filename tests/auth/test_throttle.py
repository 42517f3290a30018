"""The login throttle of SPEC 9.1: per username and address, per username, per address.

auth is told here that the test client (127.0.0.1) is a trusted proxy, so each request names
its client address in X-Forwarded-For.
"""

import asyncio

import pytest

from tests.auth.conftest import (
    CLIENT_PASSWORD,
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    Api,
    problem,
)

WRONG = "a wrong password, guessed"


@pytest.fixture
async def auth(make_auth):
    return await make_auth(trusted_proxies="127.0.0.1/32")


async def login(api, username, password, address="198.51.100.1"):
    return await api.http.post(
        "/v1/token",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


async def failures_from(api, username, address, count):
    for _ in range(count):
        assert (await login(api, username, WRONG, address)).status == 401


async def test_ten_failures_block_the_username_from_that_address_only(api, client, pool):
    number = client["client_number"]
    await failures_from(api, number, "198.51.100.1", 10)
    response = await login(api, number, CLIENT_PASSWORD, "198.51.100.1")
    await problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 900
    # The client, elsewhere, is not locked out by whoever guessed from that address.
    assert (await login(api, number, CLIENT_PASSWORD, "203.0.113.9")).status == 200
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT username, address FROM login_failures")
    assert {tuple(r) for r in rows} == {(number, "198.51.100.1")}
    assert len(rows) == 10


async def test_a_hundred_failures_from_many_addresses_block_the_username_everywhere(api, client):
    number = client["client_number"]
    for i in range(10):
        await failures_from(api, number, f"198.51.100.{i + 1}", 10)
    response = await login(api, number, CLIENT_PASSWORD, "203.0.113.9")
    await problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    # Other usernames are not affected.
    assert (await login(api, OPERATOR_EMAIL, OPERATOR_PASSWORD, "203.0.113.9")).status == 200


async def test_failures_for_twenty_usernames_block_the_address_for_every_username(api, client):
    # Unknown usernames count too: each costs an Argon2 verification, which this caps.
    for i in range(20):
        await failures_from(api, f"{900000 + i}", "198.51.100.1", 1)
    response = await login(api, client["client_number"], CLIENT_PASSWORD, "198.51.100.1")
    await problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    response = await login(api, "nobody@helpdesk.example", WRONG, "198.51.100.1")
    await problem(response, 429)
    # Another address is not affected.
    assert (await login(api, client["client_number"], CLIENT_PASSWORD, "203.0.113.9")).status == 200


async def test_nineteen_usernames_and_a_right_password_pass(api, client):
    for i in range(19):
        await failures_from(api, f"{900000 + i}", "198.51.100.1", 1)
    response = await login(api, client["client_number"], CLIENT_PASSWORD, "198.51.100.1")
    assert response.status == 200


async def test_a_success_forgets_only_the_failures_from_its_own_address(api, client, pool):
    number = client["client_number"]
    await failures_from(api, number, "198.51.100.1", 3)
    await failures_from(api, number, "198.51.100.2", 2)
    assert (await login(api, number, CLIENT_PASSWORD, "198.51.100.1")).status == 200
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT address FROM login_failures")
    assert [r["address"] for r in rows] == ["198.51.100.2"] * 2


async def test_the_window_of_a_username_and_address_is_fifteen_minutes(api, client, pool):
    number = client["client_number"]
    await failures_from(api, number, "198.51.100.1", 10)
    await problem(await login(api, number, CLIENT_PASSWORD, "198.51.100.1"), 429)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE login_failures SET failed_at = now() - interval '16 minutes'")
    assert (await login(api, number, CLIENT_PASSWORD, "198.51.100.1")).status == 200


async def test_old_failures_are_deleted(api, client, pool):
    await failures_from(api, client["client_number"], "198.51.100.1", 2)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE login_failures SET failed_at = now() - interval '61 minutes'")
    await failures_from(api, "nobody@helpdesk.example", "198.51.100.1", 1)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT array_agg(username) FROM login_failures") == [
            "nobody@helpdesk.example"
        ]


async def test_forwarded_for_is_ignored_without_trusted_proxies(make_auth, auth_db):
    """With HELPDESK_TRUSTED_PROXIES empty (the default), a client cannot dodge the throttle
    by naming a new address in each request."""
    plain = Api(await make_auth())
    for i in range(10):
        response = await login(plain, OPERATOR_EMAIL, WRONG, f"198.51.100.{i + 1}")
        assert response.status == 401
    await problem(await login(plain, OPERATOR_EMAIL, WRONG, "198.51.100.99"), 429)


async def test_many_clients_behind_one_address_log_in_at_once(api, admin, make_auth):
    """An office behind one address at nine o'clock: each attempt is counted while its
    password is checked, and 25 checked at once must not look like 25 failed usernames."""
    numbers = [
        (await api.create_client(admin, email=f"office{i}@example.com"))["client_number"]
        for i in range(25)
    ]
    # One hash at a time, tens of milliseconds each: the attempts wait for their turn
    # together, all counted meanwhile.
    slow = Api(
        await make_auth(
            trusted_proxies="127.0.0.1/32",
            argon2_concurrency=1,
            argon2_time_cost=2,
            argon2_memory_cost=32768,
            argon2_wait=60.0,
        )
    )
    answers = await asyncio.gather(
        *(login(slow, number, CLIENT_PASSWORD, "198.51.100.50") for number in numbers)
    )
    assert [a.status for a in answers] == [200] * 25


async def test_attempts_left_unsettled_by_a_crash_count_after_a_minute(api, client, pool):
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO login_failures (username, address, settled, failed_at)"
            " VALUES ($1, '198.51.100.1', false, now() - interval '2 minutes')",
            [(f"{900000 + i}",) for i in range(20)],
        )
    response = await login(api, client["client_number"], CLIENT_PASSWORD, "198.51.100.1")
    await problem(response, 429)


async def test_an_ipv6_client_counts_as_its_slash_64(api, client):
    # One host usually holds a whole /64: rotating through it must not reset the count.
    number = client["client_number"]
    for i in range(10):
        await failures_from(api, number, f"2001:db8:1:2::{i + 1:x}", 1)
    response = await login(api, number, CLIENT_PASSWORD, "2001:db8:1:2:ffff::1")
    await problem(response, 429)
    # The next /64 is someone else.
    assert (await login(api, number, CLIENT_PASSWORD, "2001:db8:1:3::1")).status == 200
