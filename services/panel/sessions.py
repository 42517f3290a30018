"""Server-side sessions behind a signed, HttpOnly, SameSite=Lax cookie, and the CSRF check.

Every visitor has a session (anonymous ones carry the language and the CSRF token of the login
form); signing in replaces it with a new one, so a session id planted before login is worthless.
"""

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from services.panel import store
from shared.http import PROBE_PATHS

COOKIE = "helpdesk_session"
CSRF_FIELD = "csrf_token"
SESSION = web.RequestKey("panel_session", "Session")
STALE = web.RequestKey("panel_stale_session", bool)
_NEW_COOKIE = web.RequestKey("panel_new_cookie", str)
# Pages without a session: operations routes and static files.
_SESSIONLESS = ("/static/", *PROBE_PATHS)
# The sliding expiry is written at most this often.
_TOUCH_EVERY = timedelta(minutes=5)


class SessionExpired(Exception):
    """The visitor's session ended (idle, logged out elsewhere, refresh token revoked)."""


class CsrfFailed(Exception):
    """A form came without the session's CSRF token."""


@dataclass
class Session:
    id: str
    csrf_token: str
    expires_at: datetime
    language: str | None = None
    time_zone: str | None = None
    kind: str | None = None
    name: str | None = None
    client_number: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    access_expires_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Session":
        fields = cls.__dataclass_fields__
        return cls(**{k: row[k] for k in row.keys() if k in fields})  # noqa: SIM118

    @property
    def signed_in(self) -> bool:
        return self.kind is not None and self.refresh_token is not None

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    def load_tokens(self, fields: Mapping[str, Any]) -> None:
        self.access_token = fields["access_token"]
        self.refresh_token = fields["refresh_token"]
        self.access_expires_at = fields["access_expires_at"]


class SessionConfig:
    def __init__(self, secret: str, *, idle_ttl: int, secure: bool) -> None:
        self.key = hashlib.sha256(secret.encode()).digest()
        self.idle_ttl = timedelta(seconds=idle_ttl)
        self.secure = secure

    def sign(self, token: str) -> str:
        mac = hmac.new(self.key, token.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{token}.{mac}"

    def unsign(self, value: str) -> str | None:
        token = value.rpartition(".")[0]
        if token and hmac.compare_digest(self.sign(token).encode(), value.encode()):
            return token
        return None


SESSION_CONFIG = web.AppKey("panel_session_config", SessionConfig)
SESSION_POOL = web.AppKey("panel_session_pool", asyncpg.Pool)


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(request: web.Request, **fields: Any) -> Session:
    """A new session for this visitor, whose cookie the middleware sets on the response."""
    config = request.app[SESSION_CONFIG]
    token = secrets.token_urlsafe(32)
    row = await store.insert_session(
        request.app[SESSION_POOL],
        id=_session_id(token),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=datetime.now(UTC) + config.idle_ttl,
        **fields,
    )
    session = Session.from_row(row)
    request[SESSION] = session
    request[_NEW_COOKIE] = config.sign(token)
    return session


async def end(request: web.Request) -> None:
    session: Session | None = request.get(SESSION)
    if session is not None:
        await store.delete_session(request.app[SESSION_POOL], session.id)


async def set_time_zone(request: web.Request, session: Session, time_zone: str) -> None:
    await store.set_time_zone(request.app[SESSION_POOL], session.id, time_zone)
    session.time_zone = time_zone


async def set_language(request: web.Request, session: Session, language: str) -> None:
    await store.set_language(request.app[SESSION_POOL], session.id, language)
    session.language = language


def current(request: web.Request) -> Session:
    return request[SESSION]


async def _load(request: web.Request) -> Session | None:
    config = request.app[SESSION_CONFIG]
    value = request.cookies.get(COOKIE)
    token = config.unsign(value) if value else None
    if token is None:
        request[STALE] = value is not None
        return None
    pool = request.app[SESSION_POOL]
    row = await store.live_session(pool, _session_id(token))
    if row is None:
        request[STALE] = True
        return None
    session = Session.from_row(row)
    renewed = datetime.now(UTC) + config.idle_ttl
    if renewed - session.expires_at > _TOUCH_EVERY:
        await store.touch_session(pool, session.id, renewed)
        session.expires_at = renewed
    return session


async def _check_csrf(request: web.Request, session: Session | None) -> None:
    if session is None:
        # A form from a session that has ended: the visitor should log in again, not be scolded.
        if request.get(STALE):
            raise SessionExpired()
        raise CsrfFailed()
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(
        sent.encode(), session.csrf_token.encode()
    ):
        raise CsrfFailed()


def _set_cookie(request: web.Request, response: web.StreamResponse) -> None:
    value = request.get(_NEW_COOKIE)
    if value is not None:
        response.set_cookie(
            COOKIE,
            value,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=request.app[SESSION_CONFIG].secure,
        )


@web.middleware
async def session_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Loads (or starts) the visitor's session and refuses any POST without its CSRF token."""
    if request.path.startswith(_SESSIONLESS):
        return await handler(request)
    try:
        session = await _load(request)
        if session is not None:
            request[SESSION] = session
        if request.method == "POST":
            await _check_csrf(request, session)
        elif session is None:
            session = await create(request)
        response = await handler(request)
    except SessionExpired:
        redirect = web.HTTPSeeOther("/login?expired=1")
        _set_cookie(request, redirect)
        raise redirect from None
    except web.HTTPException as exc:
        _set_cookie(request, exc)
        raise
    _set_cookie(request, response)
    return response


def set_cookie_on(request: web.Request, response: web.StreamResponse) -> None:
    """For responses made outside the middleware (error pages)."""
    _set_cookie(request, response)
