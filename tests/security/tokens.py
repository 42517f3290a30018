"""Tokens that must be refused, and every operation of an OpenAPI document to try them on
(tests/security's authorization matrix)."""

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import jwt

from deploy.processes import Service

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


async def call(service: Service, method: str, path: str, op: dict, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {"json": {}} if "requestBody" in op else {}
    status, _ = await service.request(method, path, headers=headers, **body)
    return status
