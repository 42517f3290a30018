"""The login throttle of SPEC 9.1 on the running suite, as a sprayer meets it: spellings of one
username share a bucket; a stranger's address is stopped after 20 usernames while the account
owner, from elsewhere, still logs in. (Recovery answers known and unknown emails in the same
time: tests/auth/test_recovery_timing.py.)"""

from typing import Any

import pytest

from deploy.processes import Service
from tests.e2e.conftest import Suite
from tests.security.support import OPERATOR_EMAIL, PASSWORD, accounts

# Each starts the services as processes: handed out first under xdist (tests/conftest.py).
pytestmark = pytest.mark.slow

WRONG = "not the password at all"


async def _login(auth: Service, username: Any, password: str, address: str) -> int:
    status, _ = await auth.request(
        "POST",
        "/v1/token",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},  # auth trusts the host's proxies, as make run does
    )
    return status


async def test_spellings_share_a_bucket_and_strangers_do_not_lock_owners_out(
    suite: Suite,
) -> None:
    known = await accounts(suite)
    auth, number = suite.auth, known.client_number
    spellings: list[Any] = [number, f" {number} ", f"00{number}", int(number)]
    for i in range(10):
        assert await _login(auth, spellings[i % 4], WRONG, "203.0.113.5") == 401
    assert await _login(auth, number, PASSWORD, "203.0.113.5") == 429
    assert await _login(auth, number, PASSWORD, "198.51.100.7") == 200

    emails = [OPERATOR_EMAIL.upper(), OPERATOR_EMAIL.title(), f"  {OPERATOR_EMAIL}"]
    for i in range(10):
        assert await _login(auth, emails[i % 3], WRONG, "203.0.113.6") == 401
    assert await _login(auth, OPERATOR_EMAIL, PASSWORD, "203.0.113.6") == 429

    # A sprayer: 20 usernames from one address, then nothing more from there.
    for i in range(20):
        assert await _login(auth, f"victim{i}@security.example", WRONG, "192.0.2.66") == 401
    assert await _login(auth, "another@security.example", WRONG, "192.0.2.66") == 429
    assert await _login(auth, number, PASSWORD, "192.0.2.66") == 429
    # The owners, from their own addresses, are not locked out by it.
    assert await _login(auth, number, PASSWORD, "198.51.100.8") == 200
    assert await _login(auth, OPERATOR_EMAIL, PASSWORD, "198.51.100.9") == 200
