"""Signing keys, access tokens (ES256 JWTs) and the opaque one-time tokens we store hashed."""

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from shared.auth import (
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    Principal,
    decode_token,
    principal_from_claims,
    token_kid,
)
from shared.errors import Unauthorized


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: a stable `kid` derived from the public key itself."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signing_key_from_pem(private_pem: str) -> SigningKey:
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise ValueError("the signing key must be an EC P-256 private key")
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = _thumbprint(jwk)
    jwk |= {"kid": kid, "alg": ALGORITHM, "use": "sig"}
    return SigningKey(kid=kid, private_pem=private_pem, public_jwk=jwk)


def generate_signing_key() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return signing_key_from_pem(pem)


@dataclass
class KeyRing:
    """The key that signs now, and every public key that still verifies."""

    signing: SigningKey
    verifying: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._private = serialization.load_pem_private_key(
            self.signing.private_pem.encode(), password=None
        )
        self._public = {
            kid: jwt.PyJWK(jwk, algorithm=ALGORITHM).key for kid, jwk in self.verifying.items()
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": list(self.verifying.values())}

    def issue(self, *, sub: str, role: str, name: str, ttl: int) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "role": role,
            "name": name,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            claims, self._private, algorithm=ALGORITHM, headers={"kid": self.signing.kid}
        )

    def verify(self, token: str) -> Principal:
        key = self._public.get(token_kid(token))
        if key is None:
            raise Unauthorized("The access token is not valid.")
        return principal_from_claims(decode_token(token, key))


def new_secret_token() -> str:
    """An unguessable token for links and refresh tokens (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """We keep only this hash: a stolen database does not yield usable tokens."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
