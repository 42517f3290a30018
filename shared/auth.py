"""Access-token verification for every service: JWKS fetched from auth, cached, refreshed when
a token names an unknown `kid`; the algorithm is pinned and audience, issuer and expiry checked."""

import asyncio
import time
from dataclasses import dataclass
from typing import Literal, Protocol

import aiohttp
import jwt
import structlog
from aiohttp import web

from shared.errors import Forbidden, ServiceUnavailable, Unauthorized

log = structlog.get_logger(__name__)

ALGORITHM = "ES256"
ISSUER = "helpdesk-auth"
AUDIENCE = "helpdesk"

Role = Literal["client", "operator", "admin"]
CLIENT: tuple[Role, ...] = ("client",)
STAFF: tuple[Role, ...] = ("operator", "admin")
ADMIN: tuple[Role, ...] = ("admin",)
ANYONE: tuple[Role, ...] = ("client", "operator", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is calling: `sub` is `client:<number>` or `operator:<id>`."""

    sub: str
    role: Role
    name: str

    @property
    def kind(self) -> Literal["client", "operator"]:
        return "client" if self.role == "client" else "operator"

    @property
    def account_id(self) -> str:
        return self.sub.split(":", 1)[1]

    @property
    def client_number(self) -> str | None:
        return self.account_id if self.kind == "client" else None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def principal_from_claims(claims: dict) -> Principal:
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or role not in ANYONE:
        raise Unauthorized("The access token is not valid.")
    kind = sub.split(":", 1)[0]
    if (kind == "client") != (role == "client") or kind not in ("client", "operator"):
        raise Unauthorized("The access token is not valid.")
    return Principal(sub=sub, role=role, name=str(claims.get("name", "")))


LEEWAY_SECONDS = 5


def decode_token(token: str, key: object) -> dict:
    """Verify signature (pinned algorithm), expiry, audience and issuer; 401 otherwise."""
    try:
        return jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is not valid.") from exc


def token_kid(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is not valid.") from exc
    kid = header.get("kid")
    if not isinstance(kid, str) or header.get("alg") != ALGORITHM:
        raise Unauthorized("The access token is not valid.")
    return kid


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal: ...


class JwksVerifier:
    """Verifies tokens with the public keys served by auth at `/.well-known/jwks.json`.

    Keys are cached; a token with an unknown `kid` triggers one refresh (at most one every
    `min_refresh_interval` seconds, so garbage tokens cannot make us hammer auth). While auth is
    down, cached keys keep verifying.

    Verified tokens are remembered too (up to `remember` of them, the oldest forgotten first)
    until they expire: a client sends the same token with every request for its whole life, and
    checking an ES256 signature costs more than most of a request's own work. A remembered token
    is accepted only while its key is still among auth's keys, so a key auth stops publishing
    stops its tokens at the next refresh, as before.
    """

    def __init__(
        self,
        auth_url: str,
        *,
        min_refresh_interval: float = 1.0,
        timeout: float = 3.0,
        remember: int = 10_000,
    ) -> None:
        self._url = auth_url.rstrip("/") + "/.well-known/jwks.json"
        self._keys: dict[str, object] = {}
        self._min_refresh = min_refresh_interval
        self._timeout = timeout
        self._last_refresh = float("-inf")
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._remember = remember
        # token -> (principal, kid, epoch seconds until which it is accepted); insertion order
        self._verified: dict[str, tuple[Principal, str, float]] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def refresh(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        self._last_refresh = time.monotonic()
        async with self._session.get(self._url) as response:
            response.raise_for_status()
            document = await response.json()
        keys = {}
        for jwk in document.get("keys", []):
            try:
                parsed = jwt.PyJWK(jwk, algorithm=ALGORITHM)
            except jwt.PyJWTError:
                log.warning("jwks.bad_key", kid=jwk.get("kid"))
                continue
            if parsed.key_id:
                keys[parsed.key_id] = parsed.key
        self._keys = keys
        log.info("jwks.refreshed", kids=sorted(keys))

    async def _key(self, kid: str) -> object:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            # Without any key yet (auth was down when we started), every request may try again.
            due = time.monotonic() - self._last_refresh >= self._min_refresh or not self._keys
            if kid not in self._keys and due:
                try:
                    await self.refresh()
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.warning("jwks.refresh_failed", error=repr(exc))
                    if not self._keys:
                        raise ServiceUnavailable("Cannot verify tokens right now.") from exc
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("The access token is not valid.")
        return key

    async def verify(self, token: str) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, kid, until = remembered
            if time.time() < until and kid in self._keys:
                return principal
            del self._verified[token]  # expired or its key withdrawn: verified again below
        kid = token_kid(token)
        claims = decode_token(token, await self._key(kid))
        principal = principal_from_claims(claims)
        if len(self._verified) >= self._remember:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, kid, claims["exp"] + LEEWAY_SECONDS)
        return principal


TOKEN_VERIFIER = web.AppKey("token_verifier", TokenVerifier)


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer access token is required.")
    return token.strip()


async def authenticate(request: web.Request, roles: tuple[Role, ...]) -> Principal:
    """The caller's principal; 401 without a valid token, 403 for a role not in `roles`."""
    principal = await request.app[TOKEN_VERIFIER].verify(bearer_token(request))
    if principal.role not in roles:
        raise Forbidden("Your account may not do this.")
    return principal
