"""Server-side sessions behind a signed, HttpOnly, SameSite=Lax cookie, and the CSRF check.

A signed-in visitor's session is a row, keyed by the SHA-256 of the cookie's random token; its
access and refresh tokens are sealed with a key derived from that token, which only the browser
holds, so the table alone lets nobody act as its users. An anonymous visitor's session lives in
the cookie alone (its language, time zone and the nonce its CSRF token is derived from), so
requests from the internet cannot fill the table. Signing in replaces either with a new session,
so a session id planted before login is worthless.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.panel import store
from shared.http import PROBE_PATHS

COOKIE = "helpdesk_session"
CSRF_FIELD = "csrf_token"
SESSION = web.RequestKey("panel_session", "Session")
STALE = web.RequestKey("panel_stale_session", bool)
_NEW_COOKIE = web.RequestKey("panel_new_cookie", str)
# A streamed form's parts after its CSRF token, for its handler to read (see `streamed_form`).
FORM_PARTS = web.RequestKey("panel_form_parts", MultipartReader)
# A CSRF token is 43 or 64 characters; a first part longer than this is not one.
_MAX_TOKEN = 128
# Pages without a session: operations routes and static files.
_SESSIONLESS = ("/static/", *PROBE_PATHS)
# The sliding expiry is written at most this often.
_TOUCH_EVERY = timedelta(minutes=5)
# The cookie token of an anonymous visitor starts with this (a signed-in one never does).
_ANONYMOUS = "a."
# Bounds what an anonymous cookie may hold before it is decoded.
_MAX_COOKIE = 512


class SessionExpired(Exception):
    """The visitor's session ended (idle, logged out elsewhere, refresh token revoked)."""


class CsrfFailed(Exception):
    """A form came without the session's CSRF token."""


class TokenBox:
    """Seals a session's access and refresh tokens with a key derived from its cookie token."""

    def __init__(self, cookie_token: str) -> None:
        key = hmac.new(cookie_token.encode(), b"helpdesk panel tokens", hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def seal(self, value: str | None) -> bytes | None:
        if value is None:
            return None
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), None)

    def open(self, sealed: bytes | None) -> str | None:
        """None for nothing stored, or for what this key did not seal."""
        if sealed is None or len(sealed) < 13:
            return None
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], None).decode()
        except (InvalidTag, UnicodeDecodeError):
            return None

    def seal_tokens(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """`fields` with the tokens sealed, as the store keeps them."""
        return {
            **fields,
            "access_token": self.seal(fields["access_token"]),
            "refresh_token": self.seal(fields["refresh_token"]),
        }


@dataclass
class Session:
    id: str  # empty for an anonymous visitor: nothing of it is stored
    csrf_token: str
    expires_at: datetime
    language: str | None = None
    time_zone: str | None = None
    kind: str | None = None
    role: str | None = None  # an operator's: "operator" or "admin"
    operator_id: int | None = None
    name: str | None = None
    client_number: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    access_expires_at: datetime | None = None
    box: TokenBox | None = field(default=None, repr=False)
    nonce: str = field(default="", repr=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], box: TokenBox) -> "Session":
        fields = cls.__dataclass_fields__
        session = cls(**{k: row[k] for k in row.keys() if k in fields}, box=box)  # noqa: SIM118
        session.load_sealed(row)
        return session

    @property
    def anonymous(self) -> bool:
        return not self.id

    @property
    def signed_in(self) -> bool:
        return self.kind is not None and self.refresh_token is not None

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    @property
    def is_admin(self) -> bool:
        return self.is_operator and self.role == "admin"

    def load_tokens(self, fields: Mapping[str, Any]) -> None:
        self.access_token = fields["access_token"]
        self.refresh_token = fields["refresh_token"]
        self.access_expires_at = fields["access_expires_at"]

    def load_sealed(self, row: Mapping[str, Any]) -> None:
        """The tokens of a stored row; an access token that does not open is refreshed."""
        assert self.box is not None
        access = self.box.open(row["access_token"])
        self.access_token = access
        self.refresh_token = self.box.open(row["refresh_token"])
        self.access_expires_at = row["access_expires_at"] if access is not None else None

    def sealed(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        assert self.box is not None
        return self.box.seal_tokens(fields)


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

    def csrf_token(self, nonce: str) -> str:
        return hmac.new(self.key, f"csrf {nonce}".encode(), hashlib.sha256).hexdigest()

    def anonymous_token(self, session: "Session") -> str:
        state = {"n": session.nonce, "l": session.language, "z": session.time_zone}
        return _ANONYMOUS + base64.urlsafe_b64encode(json.dumps(state).encode()).decode()

    def anonymous_session(self, token: str) -> "Session | None":
        """The visitor a signed anonymous token describes (None for one this panel did not
        issue in this shape)."""
        try:
            state = json.loads(base64.urlsafe_b64decode(token.removeprefix(_ANONYMOUS)))
            nonce, language, time_zone = state["n"], state["l"], state["z"]
        except (binascii.Error, ValueError, TypeError, KeyError):
            return None
        if not isinstance(nonce, str) or not all(
            v is None or isinstance(v, str) for v in (language, time_zone)
        ):
            return None
        return self.anonymous(nonce, language=language, time_zone=time_zone)

    def anonymous(
        self, nonce: str, *, language: str | None = None, time_zone: str | None = None
    ) -> "Session":
        return Session(
            id="",
            csrf_token=self.csrf_token(nonce),
            expires_at=datetime.now(UTC) + self.idle_ttl,
            language=language,
            time_zone=time_zone,
            nonce=nonce,
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_CONFIG = web.AppKey("panel_session_config", SessionConfig)
SESSION_POOL = web.AppKey("panel_session_pool", asyncpg.Pool)


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(request: web.Request, **fields: Any) -> Session:
    """A new stored session for this visitor (its tokens sealed), whose cookie the middleware
    sets on the response."""
    config = request.app[SESSION_CONFIG]
    token = secrets.token_urlsafe(32)
    box = TokenBox(token)
    row = await store.insert_session(
        request.app[SESSION_POOL],
        id=_session_id(token),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=datetime.now(UTC) + config.idle_ttl,
        **box.seal_tokens(fields),
    )
    session = Session.from_row(row, box)
    request[SESSION] = session
    request[_NEW_COOKIE] = config.sign(token)
    return session


def start_anonymous(
    request: web.Request, *, language: str | None = None, time_zone: str | None = None
) -> Session:
    """An anonymous visitor's session, kept in its cookie only."""
    config = request.app[SESSION_CONFIG]
    session = config.anonymous(secrets.token_urlsafe(16), language=language, time_zone=time_zone)
    _reissue_anonymous(request, session)
    return session


def _reissue_anonymous(request: web.Request, session: Session) -> None:
    config = request.app[SESSION_CONFIG]
    request[SESSION] = session
    request[_NEW_COOKIE] = config.sign(config.anonymous_token(session))


async def end(request: web.Request) -> None:
    session: Session | None = request.get(SESSION)
    if session is not None and not session.anonymous:
        await store.delete_session(request.app[SESSION_POOL], session.id)


async def set_time_zone(request: web.Request, session: Session, time_zone: str) -> None:
    session.time_zone = time_zone
    if session.anonymous:
        _reissue_anonymous(request, session)
    else:
        await store.set_time_zone(request.app[SESSION_POOL], session.id, time_zone)


async def set_language(request: web.Request, session: Session, language: str) -> None:
    session.language = language
    if session.anonymous:
        _reissue_anonymous(request, session)
    else:
        await store.set_language(request.app[SESSION_POOL], session.id, language)


def current(request: web.Request) -> Session:
    return request[SESSION]


async def _load(request: web.Request) -> Session | None:
    config = request.app[SESSION_CONFIG]
    value = request.cookies.get(COOKIE)
    token = config.unsign(value) if value and len(value) <= _MAX_COOKIE else None
    if token is None:
        request[STALE] = value is not None
        return None
    if token.startswith(_ANONYMOUS):
        return config.anonymous_session(token)
    pool = request.app[SESSION_POOL]
    row = await store.live_session(pool, _session_id(token))
    if row is None:
        request[STALE] = True
        return None
    session = Session.from_row(row, TokenBox(token))
    renewed = datetime.now(UTC) + config.idle_ttl
    if renewed - session.expires_at > _TOUCH_EVERY:
        await store.touch_session(pool, session.id, renewed)
        session.expires_at = renewed
    return session


def streamed_form(handler: Handler) -> Handler:
    """Marks a route whose multipart form carries files: the middleware then checks its CSRF
    token in the body's first part alone and leaves the rest, unread, under `FORM_PARTS`, so no
    file is held in memory nor read at all for a form without a valid token."""
    handler.streamed_form = True  # type: ignore[attr-defined]
    return handler


def _streams_form(request: web.Request) -> bool:
    handler = request.match_info.handler
    return request.content_type == "multipart/form-data" and getattr(
        handler, "streamed_form", False
    )


async def _first_part_token(request: web.Request) -> str | None:
    """The value of the body's first part when it is the CSRF field (browsers send a form's
    fields in document order, and the forms put the token first), else None."""
    try:
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != CSRF_FIELD or part.filename:
            return None
        value = bytearray()
        while chunk := await part.read_chunk(_MAX_TOKEN):
            value += chunk
            if len(value) > _MAX_TOKEN:
                return None
    except (ValueError, KeyError, AssertionError, HttpProcessingError):
        return None
    request[FORM_PARTS] = reader
    return value.decode(errors="replace")


async def _check_csrf(request: web.Request, session: Session | None) -> None:
    if session is None:
        # A form from a session that has ended: the visitor should log in again, not be scolded.
        if request.get(STALE):
            raise SessionExpired()
        raise CsrfFailed()
    if _streams_form(request):
        sent = await _first_part_token(request)
    else:
        sent = (await request.post()).get(CSRF_FIELD)
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
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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
            session = start_anonymous(request)
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
