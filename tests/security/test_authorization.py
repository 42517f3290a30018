"""The authorization matrix, generated from each service's own `/openapi.json`: every route that
needs a token is tried with none, with forged and stale tokens, and with a client's, an
operator's and an admin's; each answer must be what the route's `x-roles` says."""

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import asyncpg
import jwt
import pytest

from deploy.processes import Service
from tests.e2e.conftest import Suite
from tests.security.support import accounts

# Each starts the services as processes: handed out first under xdist (tests/conftest.py).
pytestmark = pytest.mark.slow

# A path parameter's stand-ins: well-formed (a number, or a UUID where the route takes one), so
# the request reaches the role check.
PATH_VALUES = ("1", "00000000-0000-4000-8000-000000000001")


def _stand_in(param: dict[str, Any]) -> str:
    pattern = param.get("schema", {}).get("pattern")
    return next(v for v in PATH_VALUES if pattern is None or re.fullmatch(pattern.strip("^$"), v))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def forged_tokens(admin_token: str, private_pem: str, public_jwk: dict) -> dict[str, str]:
    """Tokens that must all be refused, each built from the admin's real claims."""
    header = jwt.get_unverified_header(admin_token)
    claims = jwt.decode(admin_token, options={"verify_signature": False})
    now = int(time.time())
    # The algorithm-confusion attack: HS256 keyed with what a verifier holds, the public key.
    confused = _unsigned(header | {"alg": "HS256"}, claims)
    public_key = json.dumps(public_jwk, sort_keys=True).encode()
    mac = hmac.new(public_key, confused.encode(), hashlib.sha256).digest()
    kid = {"kid": header["kid"]}
    return {
        "alg none": _unsigned(header | {"alg": "none"}, claims) + ".",
        "HS256 with the public key": f"{confused}.{_b64(mac)}",
        "expired": jwt.encode(
            claims | {"iat": now - 7200, "exp": now - 3600}, private_pem, "ES256", headers=kid
        ),
        "wrong audience": jwt.encode(
            claims | {"aud": "someone-else"}, private_pem, "ES256", headers=kid
        ),
        "bad signature": admin_token[:-4] + ("AAAA" if admin_token[-4:] != "AAAA" else "BBBB"),
    }


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            concrete = path
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    concrete = concrete.replace("{" + param["name"] + "}", _stand_in(param))
            found.append((method.upper(), concrete, op))
    return found


async def _call(service: Service, method: str, path: str, op: dict, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {"json": {}} if "requestBody" in op else {}
    status, _ = await service.request(method, path, headers=headers, **body)
    return status


async def test_every_route_answers_what_its_roles_say(suite: Suite) -> None:
    tokens = (await accounts(suite)).tokens
    conn = await asyncpg.connect(suite.auth.env["AUTH_DATABASE_URL"])
    try:
        key = await conn.fetchrow(
            "SELECT private_pem, public_jwk FROM signing_keys WHERE retired_at IS NULL"
            " ORDER BY created_at DESC LIMIT 1"
        )
    finally:
        await conn.close()
    forged = forged_tokens(tokens["admin"], key["private_pem"], json.loads(key["public_jwk"]))

    wrong: list[str] = []
    checked: dict[str, int] = {}
    for service in (suite.auth, suite.tickets[0], suite.notifiers[0]):
        checked[service.name] = 0
        status, document = await service.request("GET", "/openapi.json")
        assert status == 200
        for method, path, op in operations(document):
            roles = op.get("x-roles")
            if roles is None:
                continue  # public (login, recovery, keys): nothing to authorize
            checked[service.name] += 1
            where = f"{service.name} {method} {path}"
            for name, token in {"no token": None, **forged}.items():
                status = await _call(service, method, path, op, token)
                if status != 401:
                    wrong.append(f"{where} with {name}: {status}, not 401")
            for role, token in tokens.items():
                status = await _call(service, method, path, op, token)
                if role in roles and status in (401, 403):
                    wrong.append(f"{where} as {role}: {status}, but the role is allowed")
                if role not in roles and status != 403:
                    wrong.append(f"{where} as {role}: {status}, not 403")
    assert all(checked.values()), f"protected routes found: {checked}; is x-roles published?"
    assert not wrong, "\n".join(wrong)
