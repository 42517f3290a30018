"""shared.auth.JwksVerifier against a running auth: keys fetched once and cached, refreshed when
a token names an unknown key, and every kind of forged or stale token refused with 401."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import shared.auth
from services.auth.api import DEPS
from services.auth.keys import rotate
from shared.auth import AUDIENCE, ISSUER, JwksVerifier, Principal
from shared.errors import ServiceUnavailable, Unauthorized
from shared.resources import POOL
from tests.auth.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.waiting import wait_for


class CountingVerifier(JwksVerifier):
    """The real verifier, counting its fetches of the JWKS document."""

    fetches = 0

    async def refresh(self) -> None:
        self.fetches += 1
        await super().refresh()


@pytest.fixture
async def verifier(auth) -> AsyncIterator[CountingVerifier]:
    instance = CountingVerifier(str(auth.make_url("/")), min_refresh_interval=0)
    yield instance
    await instance.close()


async def admin_token(api) -> str:
    return (await api.token(ADMIN_EMAIL, ADMIN_PASSWORD))["access_token"]


def signing(auth) -> tuple[str, object]:
    key = auth.server.app[DEPS].keys.ring.signing
    return key.kid, key.private_pem


def claims(**overrides) -> dict:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "operator:1",
        "role": "admin",
        "name": "Mallory",
        "iat": now,
        "exp": now + 600,
    } | overrides


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_a_token_issued_by_auth_is_verified(api, verifier):
    principal = await verifier.verify(await admin_token(api))

    assert principal == Principal(sub=principal.sub, role="admin", name="Ada Admin")
    assert principal.sub.startswith("operator:")


async def test_keys_are_fetched_once_and_cached(api, verifier):
    token = await admin_token(api)
    await verifier.verify(token)
    await verifier.verify(token)
    await verifier.verify(await admin_token(api))

    assert verifier.fetches == 1


async def test_cached_keys_keep_verifying_after_auth_is_gone(api, verifier):
    token = await admin_token(api)
    await verifier.verify(token)
    await api.http.close()

    assert (await verifier.verify(token)).role == "admin"
    assert verifier.fetches == 1


async def test_without_cached_keys_an_unreachable_auth_answers_503(api):
    token = await admin_token(api)
    url = str(api.http.make_url("/"))
    await api.http.close()
    verifier = JwksVerifier(url, timeout=1)
    try:
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(token)
    finally:
        await verifier.close()


async def test_a_token_signed_with_a_rotated_key_makes_the_verifier_refresh(api, verifier):
    app = api.http.server.app
    old_token = await admin_token(api)
    await verifier.verify(old_token)

    async with app[POOL].acquire() as conn:
        new_key = await rotate(conn)
    await app[DEPS].keys.reload()
    new_token = await admin_token(api)
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid

    assert (await verifier.verify(new_token)).role == "admin"
    assert verifier.fetches == 2
    # The retired key still verifies the tokens it signed before the rotation.
    assert (await verifier.verify(old_token)).role == "admin"
    assert verifier.fetches == 2


async def test_unknown_key_ids_cannot_make_the_verifier_hammer_auth(api, auth):
    verifier = CountingVerifier(str(auth.make_url("/")), min_refresh_interval=60)
    try:
        await verifier.verify(await admin_token(api))
        _, pem = signing(auth)
        for n in range(5):
            forged = jwt.encode(claims(), pem, algorithm="ES256", headers={"kid": f"unknown-{n}"})
            with pytest.raises(Unauthorized):
                await verifier.verify(forged)
        assert verifier.fetches == 1
    finally:
        await verifier.close()


async def test_a_token_with_alg_none_is_refused(api, auth, verifier):
    await verifier.verify(await admin_token(api))
    kid, _ = signing(auth)
    token = jwt.encode(claims(), None, algorithm="none", headers={"kid": kid})

    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_a_token_signed_hs256_with_the_public_key_is_refused(api, auth, verifier):
    """The classic algorithm confusion: HMAC keyed with the public key everyone can read."""
    await verifier.verify(await admin_token(api))
    kid, _ = signing(auth)
    jwks = await (await auth.get("/.well-known/jwks.json")).json()
    public = next(k for k in jwks["keys"] if k["kid"] == kid)
    pem = jwt.PyJWK(public, algorithm="ES256").key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    for secret in (pem, json.dumps(public).encode()):
        signing_input = (
            b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
            + "."
            + b64(json.dumps(claims()).encode())
        )
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(Unauthorized):
            await verifier.verify(signing_input + "." + b64(signature))


@pytest.mark.parametrize(
    "bad",
    [
        {"aud": "another-audience"},
        {"iss": "someone-else"},
        {"exp": int(time.time()) - 60},
        {"role": "superuser"},
        {"sub": "client:123", "role": "admin"},
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "unknown-role", "client-as-admin"],
)
async def test_a_well_signed_token_with_wrong_claims_is_refused(api, auth, verifier, bad):
    await verifier.verify(await admin_token(api))
    kid, pem = signing(auth)
    token = jwt.encode(claims(**bad), pem, algorithm="ES256", headers={"kid": kid})

    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_an_expired_token_says_it_expired(api, auth, verifier):
    await verifier.verify(await admin_token(api))
    kid, pem = signing(auth)
    now = int(time.time())
    token = jwt.encode(
        claims(iat=now - 1000, exp=now - 60), pem, algorithm="ES256", headers={"kid": kid}
    )

    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)


@pytest.mark.parametrize(
    "garbage", ["", "garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.", "x" * 5000]
)
async def test_garbage_is_refused_with_401(verifier, garbage):
    with pytest.raises(Unauthorized):
        await verifier.verify(garbage)


async def test_a_verified_token_is_remembered_and_not_checked_again(api, verifier, monkeypatch):
    token = await admin_token(api)
    first = await verifier.verify(token)
    checks = []
    real_decode = shared.auth.decode_token
    monkeypatch.setattr(shared.auth, "decode_token", lambda *a: checks.append(a) or real_decode(*a))

    assert await verifier.verify(token) == first
    assert checks == []
    await verifier.verify(await admin_token(api))  # another token is checked
    assert len(checks) == 1


async def test_a_remembered_token_is_refused_once_it_expires(auth, verifier):
    kid, pem = signing(auth)
    now = int(time.time())
    # Already expired, but within the 5 s leeway: accepted (and remembered) for about two seconds.
    exp = now - shared.auth.LEEWAY_SECONDS + 2
    token = jwt.encode(claims(iat=now - 600, exp=exp), pem, algorithm="ES256", headers={"kid": kid})
    await verifier.verify(token)

    async def refused() -> bool:
        try:
            await verifier.verify(token)
        except Unauthorized as exc:
            assert "expired" in str(exc)
            return True
        return False

    await wait_for(refused, timeout=5, message="the remembered token refused as expired")
